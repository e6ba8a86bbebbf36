//! (8) Samples that cannot drift. Every checker output the book shows is `samples/NAME.txt`,
//! made by running the command `samples.toml` gives for it, and included by the chapter. This
//! test runs every command again: with `BLESS=1` it rewrites the files (the one command that
//! regenerates every sample), without it it fails when an output's shape is no longer the shape
//! of the file the book shows. And no chapter may show checker output typed by hand.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use regex::Regex;

use crate::markdown::code_blocks;
use crate::util::{assert_blessed, blessing, book_dir, book_toml, built_exe, chapters, root};

#[derive(serde::Deserialize)]
struct Manifest {
    sample: Vec<Sample>,
}

#[derive(serde::Deserialize)]
struct Sample {
    name: String,
    #[serde(default)]
    args: Vec<String>,
    /// A session by hand instead of a checker command: the reference server of this step
    /// (its slug), sent `send` one line at a time, as a person with `nc` would.
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    send: Vec<String>,
    #[serde(default)]
    code: i32,
    #[serde(default)]
    keep: Option<Keep>,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    fresh: bool,
}

#[derive(serde::Deserialize)]
struct Keep {
    from: String,
    to: String,
}

fn manifest() -> Manifest {
    book_toml("samples.toml")
}

fn sample_file(name: &str) -> PathBuf {
    book_dir().join(format!("samples/{name}.txt"))
}

/// What `sample`'s command prints, as the book shows it: the kit's folder is the reader's
/// `/home/you/eventkit`, and the command is written the way the book writes it.
fn run(exe: &PathBuf, sample: &Sample, scratch: &std::path::Path) -> Result<String, String> {
    if let Some(slug) = &sample.server {
        return session(slug, &sample.send);
    }
    let mut command = Command::new(exe);
    command
        .args(&sample.args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        // As if run with `cargo run -p checker --`, the way the book tells learners to.
        .env("CARGO", env!("CARGO"));
    if sample.fresh {
        command.env(
            "EVENTKIT_PROGRESS",
            scratch.join(format!("{}-progress.json", sample.name)),
        );
    }
    let out = command.output().map_err(|e| e.to_string())?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    if out.status.code() != Some(sample.code) {
        return Err(format!(
            "`checker {}` exited with {:?}, not {}:\n{stdout}\n{stderr}",
            sample.args.join(" "),
            out.status.code(),
            sample.code
        ));
    }
    let text = match sample.stream.as_deref() {
        None | Some("stdout") => stdout,
        Some("stderr") => stderr,
        Some("both") => stdout + &stderr,
        Some(other) => return Err(format!("{}: no stream {other:?}", sample.name)),
    };
    let root = root().display().to_string();
    let text = text.replace(&root, "/home/you/eventkit");
    let text = match &sample.keep {
        None => text,
        Some(keep) => excerpt(&text, keep).ok_or_else(|| {
            format!(
                "{}: no lines from {:?} to {:?} in:\n{text}",
                sample.name, keep.from, keep.to
            )
        })?,
    };
    Ok(text.trim_end().to_string() + "\n")
}

/// A session with step `slug`'s reference server, written as `nc` shows it: each line sent, then
/// what came back. Before a query, the server is given time to finish what it accepted (as a
/// person's typing does): the session waits until its counters say it is idle.
fn session(slug: &str, send: &[String]) -> Result<String, String> {
    use std::io::{BufRead, BufReader, Write};
    let package = format!("step{slug}_solution");
    let exe = built_exe(&package)?;
    let mut server = Command::new(exe)
        .args(["--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut announce = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut announce)
        .map_err(|e| e.to_string())?;
    let result = (|| -> Result<String, String> {
        let addr = announce
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("{package} said {announce:?}"))?
            .to_string();
        let connect =
            || -> Result<(std::net::TcpStream, BufReader<std::net::TcpStream>), String> {
                let s = std::net::TcpStream::connect(&addr).map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .map_err(|e| e.to_string())?;
                let r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
                Ok((s, r))
            };
        let ask = |c: &mut (std::net::TcpStream, BufReader<std::net::TcpStream>),
                   line: &str|
         -> Result<String, String> {
            c.0.write_all(format!("{line}\n").as_bytes())
                .map_err(|e| e.to_string())?;
            let mut reply = String::new();
            c.1.read_line(&mut reply).map_err(|e| e.to_string())?;
            Ok(reply.trim_end().to_string())
        };
        let mut user = connect()?;
        let mut text = String::from("$ nc 127.0.0.1 7878\n");
        for line in send {
            if line.contains("\"type\"") {
                // Wait until every accepted event is processed, on a connection of its own (a
                // server without counters has nothing to wait for).
                let mut side = connect()?;
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while std::time::Instant::now() < deadline {
                    let m: serde_json::Value =
                        serde_json::from_str(&ask(&mut side, "{\"type\":\"metrics\"}")?)
                            .unwrap_or_default();
                    let n = |k: &str| m[k].as_u64();
                    match (n("received"), n("processed"), n("dropped")) {
                        (Some(r), Some(p), Some(d)) if p + d < r => {}
                        _ => break,
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
            let reply = ask(&mut user, line)?;
            text += &format!("{line}\n{reply}\n");
        }
        Ok(text)
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}

fn excerpt(text: &str, keep: &Keep) -> Option<String> {
    let (from, to) = (
        Regex::new(&keep.from).unwrap(),
        Regex::new(&keep.to).unwrap(),
    );
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| from.is_match(l))?;
    let end = start + lines[start..].iter().position(|l| to.is_match(l))?;
    Some(lines[start..=end].join("\n"))
}

/// The kind of one line: what stays when the numbers, the timings and the words of the moment
/// are taken away. Two outputs have the same shape when their kinds, in order, are the same.
fn kind(line: &str) -> Option<String> {
    let digits = Regex::new(r"\d+(\.\d+)?").unwrap();
    let masked = digits.replace_all(line.trim_end(), "N");
    let indent = masked.len() - masked.trim_start().len();
    let body = masked.trim_start();
    if body.is_empty() {
        return None;
    }
    let kind = if let Some(rest) = body.strip_prefix('[') {
        let (tag, after) = rest.split_once(']').unwrap_or((rest, ""));
        if tag.starts_with("N.N s") || tag.starts_with(" N.N s") {
            // A demo's narration: its first words say which event of the story it is.
            let words: Vec<&str> = after.split_whitespace().take(3).collect();
            format!("[t] {}", words.join(" "))
        } else {
            // A line of a transcript: what the clients and the server did varies with timing.
            "[transcript]".to_string()
        }
    } else if let Some(name) = body.strip_prefix("✔ ").or(body.strip_prefix("✘ ")) {
        format!(
            "{} {}",
            &body[..3],
            name.split_whitespace().next().unwrap_or("")
        )
    } else if let Some((label, _)) = body.split_once(": ").filter(|(l, _)| {
        l.len() <= 24
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c == ' ' || c == '"' || c == '_')
    }) {
        // `expected:`, `got:`, `hint:`, `replay it:`, and a JSON document's `"field":`.
        format!("{label}:")
    } else {
        body.split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(format!("{indent} {kind}"))
}

/// The kinds of `text`'s lines, with repeats of one kind in a row counted once.
fn shape(text: &str) -> Vec<String> {
    let mut kinds: Vec<String> = text.lines().filter_map(kind).collect();
    kinds.dedup();
    kinds
}

#[test]
fn every_sample_is_what_the_checker_prints_now() {
    let bless = blessing();
    let exe = built_exe("checker").unwrap_or_else(|e| panic!("{e}"));
    let scratch = std::env::temp_dir().join(format!("eventkit-samples-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut problems = Vec::new();
    for sample in manifest().sample {
        let now = match run(&exe, &sample, &scratch) {
            Ok(text) => text,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let file = sample_file(&sample.name);
        if bless {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &now).unwrap();
            continue;
        }
        let shown = std::fs::read_to_string(&file).unwrap_or_default();
        let (was, is) = (shape(&shown), shape(&now));
        if was != is {
            let first = was
                .iter()
                .zip(&is)
                .position(|(a, b)| a != b)
                .unwrap_or(was.len().min(is.len()));
            problems.push(format!(
                "samples/{}.txt no longer has the shape of `checker {}`: from line kind {first}, the book shows {:?}, the checker now prints {:?}\nnow:\n{now}",
                sample.name,
                sample.args.join(" "),
                was.get(first..).unwrap_or_default(),
                is.get(first..).unwrap_or_default()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert_blessed(&problems, "samples");
}

#[test]
fn every_sample_is_shown_and_no_checker_output_is_typed_by_hand() {
    let names: BTreeSet<String> = manifest().sample.into_iter().map(|s| s.name).collect();
    let pages = chapters();
    let mut problems = Vec::new();
    for name in &names {
        let include = format!("{{{{#include ../samples/{name}.txt}}}}");
        if !pages.iter().any(|(_, text)| text.contains(&include)) {
            problems.push(format!("samples/{name}.txt is shown by no chapter"));
        }
    }
    // What only the checker prints: a demo's or a step's heading, a check's verdict, a hint.
    let typed = Regex::new(
        r"(?m)^(demo · step|step \d\d · |eventkit  |\s+[✔✘] \w+|\s+hint: |Hints for step)",
    )
    .unwrap();
    for (page, text) in &pages {
        for block in code_blocks(text) {
            if block.lang() == "text" && !block.is_include() && typed.is_match(&block.body) {
                problems.push(format!(
                    "{page}:{}: checker output typed by hand: make it a sample (book/samples.toml)",
                    block.line
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_change_of_shape_is_seen_and_a_change_of_numbers_is_not() {
    let shown = "step 03 · Parse events  (solutions/02_async_echo)\n  ✘ valid_events  (314 ms)\n      expected: {\"status\":\"accepted\"}\n      got:      hello\n  0 of 1 checks passed\n";
    let numbers = shown.replace("314", "2871").replace("0 of 1", "1 of 1");
    assert_eq!(shape(shown), shape(&numbers));
    let renamed = shown.replace("expected:", "wanted:");
    assert_ne!(shape(shown), shape(&renamed));
    let other_check = shown.replace("valid_events", "invalid_events");
    assert_ne!(shape(shown), shape(&other_check));
    let longer = format!("{shown}  replay it: checker replay x.json\n");
    assert_ne!(shape(shown), shape(&longer));
}
