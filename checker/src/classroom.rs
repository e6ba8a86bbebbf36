//! For teachers: `report` grades many learner checkouts in one go, and `doctor` checks that a
//! machine is ready for a workshop, offline included.

use crate::report::Style;
use crate::server;
use anyhow::{Context, Result};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One learner's row in the report.
#[derive(Debug, Clone)]
pub struct Row {
    pub learner: String,
    pub passed: Option<usize>,
    /// `NN_slug/check` of the first failure, or why the checkout could not be graded.
    pub first_failure: String,
    pub seconds: u64,
}

/// Bytes of a learner's report read at most (a checkout cannot make the teacher's run grow).
const MAX_OUTPUT: u64 = 16 << 20;

/// Grades every checkout with this very checker (so a checkout cannot change the grading),
/// `jobs` at a time, each in its own process group and under its own time limit.
pub fn report(dirs: &[PathBuf], jobs: usize, timeout: Duration, style: Style) -> Vec<Row> {
    let next = AtomicUsize::new(0);
    let rows = Mutex::new(Vec::new());
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(dir) = dirs.get(i) else { break };
                let row = grade(dir, timeout);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                let passed = row
                    .passed
                    .map(|p| format!("{p} of 10 steps"))
                    .unwrap_or_else(|| "not graded".into());
                eprintln!(
                    "{} {}: {passed} ({}) in {} s",
                    style.dim(&format!("[{n}/{}]", dirs.len())),
                    row.learner,
                    row.first_failure,
                    row.seconds
                );
                rows.lock().unwrap_or_else(|e| e.into_inner()).push(row);
            });
        }
    });
    let mut rows = rows.into_inner().unwrap_or_else(|e| e.into_inner());
    rows.sort_by(|a, b| a.learner.cmp(&b.learner));
    rows
}

fn grade(dir: &Path, timeout: Duration) -> Row {
    let started = Instant::now();
    let learner = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let row = |passed, first_failure: String| Row {
        learner: learner.clone(),
        passed,
        first_failure,
        seconds: started.elapsed().as_secs(),
    };
    if !dir.join("checker/steps.toml").is_file() {
        return row(
            None,
            "not an eventkit checkout (no checker/steps.toml)".into(),
        );
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return row(None, format!("cannot find the checker itself: {e}")),
    };
    let mut command = Command::new(exe);
    command
        .args(["verify", "--all", "--format", "json", "--no-color"])
        .current_dir(dir)
        // Each checkout builds in its own target folder: nothing is shared between learners.
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = match server::spawn_in_own_group(&mut command) {
        Ok(child) => child,
        Err(e) => return row(None, format!("could not start the checker: {e}")),
    };
    let mut pipe = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.by_ref().take(MAX_OUTPUT).read_to_end(&mut out);
        // Drain the rest so that the child never blocks on a full pipe.
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        out
    });
    let deadline = started + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() >= deadline {
            // SIGTERM first: the checker in that checkout then stops its own build and servers,
            // which live in process groups of their own.
            server::stop_group(&mut child, Duration::from_secs(5));
            let _ = reader.join();
            return row(None, format!("timed out after {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    server::reap(&mut child);
    let out = reader.join().unwrap_or_default();
    match serde_json::from_slice::<Value>(&out) {
        Ok(report) => summarize(&report, row),
        Err(_) => row(
            None,
            "the checker produced no report (see `checker verify --all` in that checkout)".into(),
        ),
    }
}

/// Steps passed and the first failure, from a `verify --all --format json` report.
fn summarize(report: &Value, row: impl Fn(Option<usize>, String) -> Row) -> Row {
    let steps = report["steps"].as_array().cloned().unwrap_or_default();
    let passed = steps.iter().filter(|s| s["status"] == "pass").count();
    let first = steps.iter().find(|s| s["status"] != "pass").map(|s| {
        let slug = s["slug"].as_str().unwrap_or("?");
        let check = s["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["status"] == "fail"))
            .and_then(|c| c["name"].as_str());
        match (check, s["error"].as_str()) {
            (Some(check), _) => format!("{slug}/{check}"),
            (None, Some(_)) => format!("{slug}/build"),
            (None, None) => slug.to_string(),
        }
    });
    row(Some(passed), first.unwrap_or_else(|| "-".into()))
}

pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| learner | steps passed | first failing check | seconds |\n|---|---|---|---|\n",
    );
    for r in rows {
        let passed = r
            .passed
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "| {} | {passed} | {} | {} |\n",
            r.learner.replace('|', "\\|"),
            r.first_failure.replace('|', "\\|"),
            r.seconds
        ));
    }
    out
}

pub fn csv(rows: &[Row]) -> String {
    let field = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from("learner,steps_passed,first_failing_check,seconds\n");
    for r in rows {
        let passed = r.passed.map(|p| p.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{},{passed},{},{}\n",
            field(&r.learner),
            field(&r.first_failure),
            r.seconds
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------
// doctor
// ---------------------------------------------------------------------------------------

/// The oldest Rust the kit builds with (the newest `rust-version` among its dependencies).
const MIN_RUST: (u64, u64) = (1, 88);
/// File descriptors a learner's server and the checker need at the same time, with room.
const MIN_OPEN_FILES: u64 = 4096;

/// One finding: what was checked, whether it is fine, and how to fix it if not.
struct Finding {
    what: String,
    ok: bool,
    fix: String,
}

pub fn doctor(root: &Path, style: Style) -> Result<u8> {
    let rustc = Rustc::ask();
    let findings = vec![
        rust_version(&rustc),
        loopback(),
        default_port(),
        open_files(),
        offline(root, rustc.host.as_deref()),
    ];
    let mut bad = 0;
    for f in &findings {
        if f.ok {
            println!("{} {}", style.green("✔"), f.what);
        } else {
            bad += 1;
            println!("{} {}", style.red("✘"), f.what);
            println!("    {} {}", style.yellow("fix:"), f.fix);
        }
    }
    println!();
    if bad == 0 {
        println!("{}", style.green("This machine is ready for the course."));
        Ok(0)
    } else {
        println!(
            "{}",
            style.red(&format!("{bad} problem(s) to fix before the course."))
        );
        Ok(1)
    }
}

/// What `rustc -vV` says of itself: its version line, and the platform it builds for.
struct Rustc {
    /// `rustc 1.95.0 (59807616e 2026-04-14)`, or empty when there is no rustc.
    version: String,
    /// `x86_64-unknown-linux-gnu`.
    host: Option<String>,
}

impl Rustc {
    fn ask() -> Rustc {
        let text = Command::new("rustc")
            .arg("-vV")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        Rustc {
            version: text.lines().next().unwrap_or("").to_string(),
            host: text
                .lines()
                .find_map(|l| l.strip_prefix("host: "))
                .map(str::to_string),
        }
    }
}

fn rust_version(rustc: &Rustc) -> Finding {
    let text = &rustc.version;
    let version = text.split_whitespace().nth(1).unwrap_or("");
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let ok = (major, minor) >= MIN_RUST;
    Finding {
        what: if text.is_empty() {
            "rustc: not found".into()
        } else {
            format!(
                "{} (needs {}.{} or newer)",
                text.trim(),
                MIN_RUST.0,
                MIN_RUST.1
            )
        },
        ok,
        fix: "install or update the toolchain: `rustup update stable` (https://rustup.rs)".into(),
    }
}

fn loopback() -> Finding {
    let ok = std::net::TcpListener::bind("127.0.0.1:0").is_ok();
    Finding {
        what: "a server can listen on 127.0.0.1".into(),
        ok,
        fix: "the loopback interface is down or blocked: check the firewall, or ask the machine's administrator".into(),
    }
}

fn default_port() -> Finding {
    let ok = std::net::TcpListener::bind("127.0.0.1:7878").is_ok();
    Finding {
        what: "the default address 127.0.0.1:7878 is free".into(),
        ok,
        fix: "something already listens there (a server you left running?): stop it (`lsof -i :7878` or `ss -ltnp` names it), or run your server with --addr 127.0.0.1:0".into(),
    }
}

fn open_files() -> Finding {
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(0);
    Finding {
        what: format!("open files allowed: {soft} (needs {MIN_OPEN_FILES})"),
        ok: soft >= MIN_OPEN_FILES,
        fix: format!("the checker already raised its own limit as far as this system allows; raise the hard limit in the shell that runs it with `ulimit -n {MIN_OPEN_FILES}` (as root if it refuses; `nofile` in /etc/security/limits.conf keeps it)"),
    }
}

fn offline(root: &Path, host: Option<&str>) -> Finding {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["fetch", "--offline", "--locked"]);
    // Only what this machine builds: a build downloads no crate for other platforms (the
    // Windows ones, say), and a plain fetch would ask for them all.
    if let Some(host) = host {
        command.args(["--target", host]);
    }
    let out = command
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let (ok, why) = match out {
        Ok(o) if o.status.success() => (true, String::new()),
        Ok(o) => (
            false,
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .find(|l| l.contains("error"))
                .unwrap_or("")
                .to_string(),
        ),
        Err(e) => (false, e.to_string()),
    };
    Finding {
        what: if ok { "every dependency is on this machine: the kit builds offline".into() } else { format!("the kit cannot build offline: {}", why.trim()) },
        ok,
        fix: "while online, run `cargo fetch` in the kit (or vendor the dependencies for a room without internet: see the teachers' guide)".into(),
    }
}

/// Writes `text` to `path`, naming the file in any error.
pub fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(passed: Option<usize>, first: String) -> Row {
        Row {
            learner: "ana".into(),
            passed,
            first_failure: first,
            seconds: 3,
        }
    }

    #[test]
    fn a_report_is_summarized_by_steps_passed_and_first_failure() {
        let report = json!({"steps": [
            {"slug": "01_blocking_echo", "status": "pass", "error": null, "checks": []},
            {"slug": "02_async_echo", "status": "fail", "error": null, "checks": [
                {"name": "echo_one_line", "status": "pass"}, {"name": "echo_many_clients", "status": "fail"}]},
            {"slug": "03_parse_events", "status": "error", "error": "build failed", "checks": []}
        ]});
        let r = summarize(&report, row);
        assert_eq!(r.passed, Some(1));
        assert_eq!(r.first_failure, "02_async_echo/echo_many_clients");
    }

    #[test]
    fn tables_escape_what_would_break_them() {
        let rows = vec![Row {
            learner: "a|b \"c\"".into(),
            passed: None,
            first_failure: "timed out".into(),
            seconds: 9,
        }];
        assert!(markdown(&rows).contains("| a\\|b \"c\" | - | timed out | 9 |"));
        assert!(csv(&rows).ends_with("\"a|b \"\"c\"\"\",,\"timed out\",9\n"));
    }
}
