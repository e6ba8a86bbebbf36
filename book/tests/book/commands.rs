//! (5) Every `checker ...` command the book shows is one the checker accepts: its verb exists,
//! and every flag it shows appears in that verb's `--help`. Each verb's help comes from the real
//! checker, run the way the book tells learners to run it (`cargo run -p checker -- VERB --help`),
//! so a renamed verb or flag breaks this test rather than a learner's copy and paste. Step
//! numbers, `--check` names and `--format` values are checked against `checker/steps.toml` and
//! the help text too.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Mutex;

use regex::Regex;

use crate::markdown::{code_blocks, code_spans, prose_lines};
use crate::util::{built_exe, chapters, root};

/// `checker ARGS` through cargo, from the workspace root: its stdout, or why it failed.
fn run_checker(args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO"))
        .args(["run", "-q", "-p", "checker", "--"])
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`checker {}` exited with {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The help of `checker [VERB] --help`, asked once per verb.
fn help(verb: Option<&str>) -> Result<String, String> {
    static CACHE: Mutex<BTreeMap<String, Result<String, String>>> = Mutex::new(BTreeMap::new());
    let key = verb.unwrap_or("").to_string();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(key)
        .or_insert_with(|| match verb {
            Some(v) => run_checker(&[v, "--help"]),
            None => run_checker(&["--help"]),
        })
        .clone()
}

/// The verbs in the `Commands:` section of the top-level help.
fn verbs() -> BTreeSet<String> {
    let text = help(None).unwrap_or_else(|e| panic!("{e}"));
    let line = Regex::new(r"^  ([a-z][a-z-]*)\s").unwrap();
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| line.captures(l).map(|c| c[1].to_string()))
        .collect()
}

/// Every flag (`--long` and `-s`) a help text shows, its aliases included.
fn flags_in(help: &str) -> BTreeSet<String> {
    // Only where an option line starts (`  -y, --yes`, `      --all`): a flag quoted in a
    // description is not one of the verb's own.
    let line = Regex::new(r"(?m)^\s+(?:(-[a-zA-Z]),\s+)?(--[a-zA-Z][a-zA-Z-]*)?").unwrap();
    let mut flags: BTreeSet<String> = line
        .captures_iter(help)
        .flat_map(|c| [c.get(1), c.get(2)])
        .flatten()
        .map(|m| m.as_str().to_string())
        .collect();
    flags.extend(aliases_in(help).into_keys());
    flags
}

/// The aliases a help text shows (`[alias: --scenario]`), each with the flag it stands for.
fn aliases_in(help: &str) -> BTreeMap<String, String> {
    let line =
        Regex::new(r"(?m)^\s+(?:-[a-zA-Z],\s+)?(--[a-zA-Z][a-zA-Z-]*).*\[alias(?:es)?: ([^\]]+)\]")
            .unwrap();
    line.captures_iter(help)
        .flat_map(|c| {
            let flag = c[1].to_string();
            c[2].split(", ")
                .map(|alias| (alias.to_string(), flag.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The checks and step numbers the course has, from `checker/steps.toml`.
fn course() -> (BTreeSet<String>, BTreeSet<String>) {
    let text =
        std::fs::read_to_string(root().join("checker/steps.toml")).expect("checker/steps.toml");
    let value: toml::Value = toml::from_str(&text).expect("valid steps.toml");
    let steps = value["step"].as_array().expect("[[step]] tables");
    let mut checks = BTreeSet::new();
    let mut names = BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let slug = step["slug"].as_str().unwrap();
        names.extend([
            n.to_string(),
            format!("{n:02}"),
            format!("step{n:02}"),
            slug.to_string(),
        ]);
        // The checks each step adds (every check is added by exactly one step).
        for list in ["adds"] {
            for c in step
                .get(list)
                .and_then(|l| l.as_array())
                .into_iter()
                .flatten()
            {
                checks.insert(c.as_str().unwrap().to_string());
            }
        }
    }
    (checks, names)
}

/// Every piece of code in a chapter that could hold a command: each line of a code block, and
/// each inline code span. (line number, text)
fn code_texts(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for block in code_blocks(text) {
        for (i, line) in block.body.lines().enumerate() {
            out.push((block.line + 1 + i, line.to_string()));
        }
    }
    for (n, line) in prose_lines(text) {
        for span in code_spans(line) {
            out.push((n, span.to_string()));
        }
    }
    out
}

/// A command found in the book: `checker VERB ARGS...`.
#[derive(Debug)]
pub struct Found {
    pub at: String,
    pub verb: String,
    pub args: Vec<String>,
    /// Its line says (in a shell comment) that the command fails on purpose: an example of an
    /// error. Its verb must exist; its arguments are not checked.
    pub on_purpose: bool,
}

/// The `checker` commands in one chapter. `cargo run -p checker -- VERB ...` and
/// `checker VERB ...` count; `cargo ... -p checker` without `--`, and `--path checker`, are
/// cargo's own commands. A shell comment (`# ...`) ends a command, and so does a closing
/// backtick (a command quoted inside a longer line).
pub fn commands_in(file: &str, text: &str) -> Vec<Found> {
    let stop = [
        "|",
        "&&",
        "||",
        ";",
        ">",
        "2>&1",
        "2>/dev/null",
        ">/dev/null",
    ];
    let verb_like = Regex::new(r"^[a-z][a-z-]*$").unwrap();
    let mut found = Vec::new();
    for (n, code) in code_texts(text) {
        let (code, comment) = match code.find(" #").or(code.starts_with('#').then_some(0)) {
            Some(at) => (&code[..at], &code[at..]),
            None => (code.as_str(), ""),
        };
        let raw: Vec<&str> = code.split_whitespace().collect();
        let tokens: Vec<&str> = raw
            .iter()
            .map(|t| t.trim_matches(|c| c == '`' || c == '"' || c == '\''))
            .collect();
        for (i, &tok) in tokens.iter().enumerate() {
            if tok != "checker" || raw[i].ends_with('`') {
                continue;
            }
            let prev = if i > 0 { tokens[i - 1] } else { "" };
            let mut j = i + 1;
            match prev {
                "--path" => continue,
                "-p" => {
                    if tokens.get(j) != Some(&"--") {
                        continue;
                    }
                    j += 1;
                }
                _ => {}
            }
            let Some(&verb) = tokens.get(j) else { continue };
            if !verb_like.is_match(verb) || stop.contains(&verb) {
                continue;
            }
            let mut args = Vec::new();
            if !raw[j].ends_with('`') {
                for (t, r) in tokens.iter().zip(&raw).skip(j + 1) {
                    if stop.iter().any(|s| t.starts_with(s)) {
                        break;
                    }
                    args.push(t.to_string());
                    if r.ends_with('`') {
                        break;
                    }
                }
            }
            found.push(Found {
                at: format!("{file}:{n}"),
                verb: verb.to_string(),
                args,
                on_purpose: comment.contains("on purpose"),
            });
        }
    }
    found
}

/// A placeholder for a value, not a value: `NN`, `STEP`, `[STEP]`, `<DIR>`, `$step`.
fn is_placeholder(arg: &str) -> bool {
    let bare = arg.trim_matches(|c| matches!(c, '[' | ']' | '<' | '>' | '.'));
    arg.starts_with('$')
        || (!bare.is_empty() && bare.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
}

/// The values a flag accepts, when its help line lists them (`[possible values: a, b]`).
fn possible_values(help: &str, flag: &str) -> Option<Vec<String>> {
    let line = help.lines().find(|l| l.contains(&format!("{flag} <")))?;
    let list = line.split("[possible values: ").nth(1)?.split(']').next()?;
    Some(list.split(',').map(|v| v.trim().to_string()).collect())
}

/// The command line as the checker's own parser reads it, every flag together (a pair that
/// cannot be used together, such as `--all --previous`, is refused there): `None` if it is
/// accepted, or what the parser said. Placeholders become values of their kind.
fn parsed(verb: &str, args: &[String], help: &str) -> Option<String> {
    let usage = help.lines().find(|l| l.starts_with("Usage:")).unwrap_or("");
    let positional_values = help
        .lines()
        .skip_while(|l| !l.starts_with("Arguments:"))
        .take_while(|l| !l.starts_with("Options:"))
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter_map(|l| l.split(':').next())
        .map(|v| v.trim().to_string())
        .collect::<Vec<_>>();
    let mut line = vec![verb.to_string()];
    let mut previous_flag: Option<String> = None;
    for arg in args {
        let value = if is_placeholder(arg) {
            match &previous_flag {
                Some(flag) => possible_values(help, flag)
                    .and_then(|v| v.first().cloned())
                    .unwrap_or_else(|| "1".into()),
                None if usage.contains("STEP") => "05".into(),
                None => positional_values
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "1".into()),
            }
        } else {
            arg.clone()
        };
        previous_flag = (arg.starts_with("--") && !arg.contains('=')).then(|| arg.clone());
        line.push(value);
    }
    let out = Command::new(built_exe("checker").ok()?)
        .args(&line)
        .current_dir(root())
        .env("EVENTKIT_PARSE_ONLY", "1")
        .env("NO_COLOR", "1")
        .output()
        .ok()?;
    (!out.status.success()).then(|| {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    })
}

/// What is wrong with the commands found.
pub fn command_problems(found: &[Found]) -> Vec<String> {
    let verbs = verbs();
    let (checks, steps) = course();
    let mut problems = Vec::new();
    for f in found {
        let shown = format!("{}: `checker {} {}`", f.at, f.verb, f.args.join(" "));
        if !verbs.contains(&f.verb) {
            problems.push(format!(
                "{shown}: no verb {:?} (the checker has {verbs:?})",
                f.verb
            ));
            continue;
        }
        let help = match help(Some(&f.verb)) {
            Ok(h) => h,
            Err(e) => {
                problems.push(format!("{shown}: {e}"));
                continue;
            }
        };
        if f.on_purpose {
            continue;
        }
        let before = problems.len();
        let flags = flags_in(&help);
        let aliases = aliases_in(&help);
        let usage = help.lines().find(|l| l.starts_with("Usage:")).unwrap_or("");
        let takes_step = usage.contains("STEP");
        let mut args = f.args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline_value) = match arg.split_once('=') {
                Some((f, v)) if arg.starts_with('-') => (f, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            if flag.starts_with('-') {
                if !flags.contains(flag) {
                    problems.push(format!(
                        "{shown}: `checker {} --help` has no {flag}",
                        f.verb
                    ));
                    continue;
                }
                // An alias is checked as the flag it stands for.
                let flag = aliases.get(flag).map_or(flag, String::as_str);
                let takes_value = Regex::new(&format!(r"{} <[A-Z_]+>", regex::escape(flag)))
                    .unwrap()
                    .is_match(&help);
                if takes_value {
                    let value = inline_value
                        .or_else(|| args.next().cloned())
                        .unwrap_or_default();
                    if is_placeholder(&value) {
                        continue;
                    }
                    if flag == "--check" && !checks.contains(&value) {
                        problems.push(format!("{shown}: there is no check {value:?}"));
                    }
                    if let Some(values) = possible_values(&help, flag) {
                        if !values.contains(&value) {
                            problems.push(format!(
                                "{shown}: {value:?} is not a value of {flag} ({values:?})"
                            ));
                        }
                    }
                }
            } else if takes_step && !is_placeholder(flag) && !steps.contains(flag) {
                problems.push(format!(
                    "{shown}: {flag:?} is not a step (1 to 12, 05, step05 or a slug)"
                ));
            }
        }
        // Each flag exists: now all of them together, as the checker itself reads them. (A
        // verb named alone, as prose does, is a name rather than a command line.)
        if problems.len() == before && !f.args.is_empty() {
            if let Some(said) = parsed(&f.verb, &f.args, &help) {
                problems.push(format!("{shown}: the checker refuses it: {said}"));
            }
        }
    }
    problems
}

#[test]
fn every_checker_command_in_the_book_exists_with_its_flags() {
    let mut found = Vec::new();
    for (file, text) in chapters() {
        found.extend(commands_in(&file, &text));
    }
    assert!(
        found.len() > 20,
        "only {} checker commands found in the book: is the parser broken?",
        found.len()
    );
    let used: BTreeSet<&str> = found.iter().map(|f| f.verb.as_str()).collect();
    for verb in [
        "verify", "hint", "watch", "diff", "demo", "list", "reset", "solution", "steps",
    ] {
        assert!(used.contains(verb), "the book never shows `checker {verb}`");
    }
    let problems = command_problems(&found);
    assert!(
        problems.is_empty(),
        "commands the checker would refuse:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn a_command_the_checker_lacks_is_caught() {
    let text = "Run `cargo run -p checker -- verify 05 --fail-fast`, then `checker verify --colour` \
                and `checker frobnicate`.\n\n\
                ```sh\n\
                cargo run -p checker -- verify 13 --check no_such_check  # a comment: checker --bogus\n\
                checker verify 42  # no such step, on purpose\n\
                checker verify --format yaml\n\
                checker verify --all --previous\n\
                cargo install --path checker\n\
                cargo test -p checker --bins skeleton\n\
                ```\n\n\
                ```text\n  (1 more: run `cargo run -p checker -- hint 05` again)\n```\n";
    let found = commands_in("x.md", text);
    let verbs: Vec<&str> = found.iter().map(|f| f.verb.as_str()).collect();
    assert_eq!(
        verbs,
        [
            "verify",
            "verify",
            "verify",
            "verify",
            "hint",
            "verify",
            "verify",
            "frobnicate"
        ],
        "{found:#?}"
    );
    assert_eq!(found[4].args, ["05"], "a closing backtick ends the command");
    let problems = command_problems(&found);
    let expect = [
        "\"13\"",
        "no_such_check",
        "yaml",
        "cannot be used with",
        "--colour",
        "frobnicate",
    ];
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    for (problem, what) in problems.iter().zip(expect) {
        assert!(problem.contains(what), "{problems:#?}");
    }
}

/// What the checker appendix (`checker.md`, as `text`) fails to document: a verb of
/// `checker --help` without a section of its own (a heading that starts with `` `checker VERB``),
/// or a flag of a verb's `--help` that the page never names.
pub fn appendix_gaps(text: &str) -> Vec<String> {
    let mut gaps = Vec::new();
    for verb in verbs().into_iter().filter(|v| v != "help") {
        if !text.contains(&format!("### `checker {verb}")) {
            gaps.push(format!(
                "no section `### `checker {verb}...` for the verb {verb}"
            ));
        }
        let help = help(Some(&verb)).unwrap_or_else(|e| panic!("{e}"));
        for flag in flags_in(&help) {
            let named = if flag.starts_with("--") {
                text.contains(&flag)
            } else {
                text.contains(&format!("`{flag}`"))
            };
            if !named {
                gaps.push(format!(
                    "`checker {verb} --help` shows {flag}, which the page never names"
                ));
            }
        }
    }
    gaps
}

#[test]
fn the_checker_appendix_documents_every_verb_and_flag() {
    let text = std::fs::read_to_string(crate::util::src_dir().join("checker.md"))
        .expect("book/src/checker.md");
    let gaps = appendix_gaps(&text);
    assert!(
        gaps.is_empty(),
        "book/src/checker.md is behind the checker:\n  {}",
        gaps.join("\n  ")
    );
}

#[test]
fn an_undocumented_verb_or_flag_is_caught() {
    let text = "### `checker verify [STEP]`\n`--all` `--previous`\n### `checker watch`\n";
    let gaps = appendix_gaps(text);
    assert!(gaps.iter().any(|g| g.contains("--solution")), "{gaps:#?}");
    assert!(gaps.iter().any(|g| g.contains("--poll")), "{gaps:#?}");
    assert!(gaps.iter().any(|g| g.contains("verb demo")), "{gaps:#?}");
    assert!(!gaps.iter().any(|g| g.contains("--all")), "{gaps:#?}");
}
