//! A crate's own tests, run as checks: the unit tests an exercise ships, and its model checks.
//! Each test executable runs in a process group of its own, killed if it outlives its time.

use crate::sut::process::{kill_group, reap, spawn_in_own_group};
use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of a crate's tests gave.
#[derive(Debug, Default)]
pub struct TestRun {
    /// Tests that ran.
    pub ran: usize,
    /// The tests that failed, in the order they were reported.
    pub failed: Vec<FailedTest>,
    /// True if a test executable outlived its time and was killed.
    pub timed_out: bool,
    /// How a test executable ended that ended badly with no test reported as failed (a panic
    /// while panicking aborts it), with what it wrote to stderr last.
    pub crashed: Option<String>,
}

/// One failed test: its name and what it said when it panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTest {
    pub name: String,
    /// The panic's place and message (`panicked at src/lib.rs:10:5:` and the lines after it).
    pub output: Vec<String>,
}

impl FailedTest {
    /// The panic message without its place: the lines after `panicked at ...`.
    pub fn message(&self) -> String {
        let lines: Vec<&str> = self
            .output
            .iter()
            .map(String::as_str)
            .skip_while(|l| !l.contains("panicked at"))
            .skip(1)
            .take_while(|l| !l.starts_with("note:") && !l.starts_with("stack backtrace"))
            .collect();
        lines.join(" ").trim().to_string()
    }
}

/// Runs every test executable in `exes` whose tests match `filter`, from the crate's folder
/// `dir`, each for at most `limit`.
pub fn run(
    exes: &[std::path::PathBuf],
    dir: &Path,
    filter: Option<&str>,
    limit: Duration,
) -> Result<TestRun> {
    let mut run = TestRun::default();
    for exe in exes {
        let ended = run_exe(exe, dir, filter, &[], limit)?;
        run.timed_out |= ended.status.is_none();
        let parsed = parse(&ended.stdout);
        run.ran += parsed.ran;
        if let Some(status) = ended
            .status
            .filter(|s| !s.success() && parsed.failed.is_empty())
        {
            // It aborted before libtest could show the captured output of the test that
            // failed: once more, one test at a time and uncaptured, for the first panic.
            let again = run_exe(
                exe,
                dir,
                filter,
                &["--nocapture", "--test-threads", "1"],
                limit,
            )?;
            run.crashed = Some(format!("{status}\n{}\n{}", again.stderr, ended.stderr));
        }
        run.failed.extend(parsed.failed);
    }
    Ok(run)
}

/// How one test executable ended: its status (none if it ran past the limit and was
/// killed), and what it wrote.
struct Ended {
    status: Option<std::process::ExitStatus>,
    stdout: String,
    stderr: String,
}

fn run_exe(
    exe: &Path,
    dir: &Path,
    filter: Option<&str>,
    extra: &[&str],
    limit: Duration,
) -> Result<Ended> {
    let mut command = Command::new(exe);
    command
        .args(filter)
        .args(extra)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child =
        spawn_in_own_group(&mut command).with_context(|| format!("running {}", exe.display()))?;
    let read_all = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = from.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("stdout is piped")));
    let stderr = read_all(Box::new(child.stderr.take().expect("stderr is piped")));
    let deadline = Instant::now() + limit;
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.try_wait().ok().flatten();
    if status.is_none() {
        kill_group(&mut child);
    } else {
        reap(&mut child);
    }
    Ok(Ended {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn parse(text: &str) -> TestRun {
    let mut run = TestRun::default();
    let mut failed_names = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("test ") {
            if let Some(name) = rest.strip_suffix(" ... FAILED") {
                failed_names.push(name.to_string());
                run.ran += 1;
            } else if rest.ends_with(" ... ok") {
                run.ran += 1;
            }
        }
    }
    // The failures section: `---- NAME stdout ----`, then what the test printed.
    let mut current: Option<FailedTest> = None;
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            run.failed.extend(current.take());
            current = Some(FailedTest {
                name: name.to_string(),
                output: Vec::new(),
            });
        } else if line == "failures:" || line.starts_with("test result:") {
            run.failed.extend(current.take());
        } else if let Some(test) = &mut current {
            if !line.trim().is_empty() {
                test.output.push(line.to_string());
            }
        }
    }
    run.failed.extend(current.take());
    // A test that failed without a section (it aborted) is still a failure.
    for name in failed_names {
        if !run.failed.iter().any(|f| f.name == name) {
            run.failed.push(FailedTest {
                name,
                output: Vec::new(),
            });
        }
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "
running 3 tests
test state::tests::adds ... ok
test state::model::never_lost ... FAILED
test lib::tests::other ... FAILED

failures:

---- state::model::never_lost stdout ----
thread 'state::model::never_lost' (26967) panicked at src/state.rs:75:13:
an update was lost: the buys of 2 and 1 replied 2 and 1
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- lib::tests::other stdout ----
thread 'lib::tests::other' panicked at src/lib.rs:12:9:
not yet implemented

failures:
    state::model::never_lost
    lib::tests::other

test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.03s
";

    #[test]
    fn reads_which_tests_failed_and_what_they_said() {
        let run = parse(OUTPUT);
        assert_eq!(run.ran, 3);
        let names: Vec<&str> = run.failed.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["state::model::never_lost", "lib::tests::other"]);
        assert_eq!(
            run.failed[0].message(),
            "an update was lost: the buys of 2 and 1 replied 2 and 1"
        );
        assert_eq!(run.failed[1].message(), "not yet implemented");
        assert!(run.failed[1].output[0].contains("panicked at src/lib.rs:12:9:"));
        assert_eq!(parse("running 0 tests\n\ntest result: ok. 0 passed").ran, 0);
    }
}
