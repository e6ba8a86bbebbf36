//! For teachers: `report` grades many learner checkouts in one go, into a table.

use crate::output::Style;
use crate::sut::process;
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
                    .map(|p| format!("{p} of {} steps", crate::catalog::steps().len()))
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
    let mut child = match process::spawn_in_own_group(&mut command) {
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
            process::stop_group(&mut child, Duration::from_secs(5));
            let _ = reader.join();
            return row(None, format!("timed out after {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    process::reap(&mut child);
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
        let all = json!({"steps": [
            {"slug": "01_blocking_echo", "status": "pass", "error": null, "checks": []},
            {"slug": "02_async_echo", "status": "pass", "error": null, "checks": []}
        ]});
        let r = summarize(&all, row);
        assert_eq!((r.passed, r.first_failure.as_str()), (Some(2), "-"));
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
