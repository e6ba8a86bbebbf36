//! The command line: arguments, exit codes, formats, start-up diagnoses, and no process left
//! behind on any exit path.

use crate::util::{alive, checker, one_at_a_time, processes, refused, root, run};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn unknown_step_unknown_check_and_missing_crate_exit_2_with_a_clear_error() {
    refused(&["verify", "13", "--solution"], "there is no step \"13\"");
    refused(
        &["verify", "3", "--solution", "--check", "no_such_check"],
        "no check named \"no_such_check\"",
    );
    refused(
        &["verify", "3", "--path", "no/such/crate"],
        "no/such/crate does not exist",
    );

    let r = run(&["verify", "3", "--solution", "--bin", "/bin/true"], &[]);
    assert_eq!(
        r.code(),
        Some(2),
        "--solution and --bin conflict{}",
        r.dump()
    );

    // A server executable that is not there: one error, not a failed run of every check.
    refused(
        &["verify", "10", "--bin", "target/release/no_such_server"],
        "no_such_server is not a file",
    );
}

#[test]
fn steps_lists_the_twelve_steps_with_their_checks() {
    let r = run(&["steps"], &[]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    for n in 1..=12 {
        assert!(
            r.stdout().contains(&format!("step {n:02} · ")),
            "step {n} missing{}",
            r.dump()
        );
    }
    assert!(
        r.stdout().contains("shutdown_under_load_loses_nothing"),
        "{}",
        r.dump()
    );
}

#[test]
fn a_server_that_exits_before_listening_is_diagnosed() {
    let r = run(
        &["verify", "1", "--bin", "/bin/false", "--format", "json"],
        &[],
    );
    assert_eq!(r.code(), Some(1), "{}", r.dump());
    let report = r.json();
    let message = report["steps"][0]["checks"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("exited with code 1 before printing its `listening on` line"),
        "{message}{}",
        r.dump()
    );
}

#[test]
fn a_server_that_prints_something_else_first_is_diagnosed() {
    // `echo` prints its arguments: "--addr 127.0.0.1:0".
    let r = run(
        &[
            "verify",
            "1",
            "--bin",
            "/bin/echo",
            "--check",
            "echo_one_line",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(r.code(), Some(1), "{}", r.dump());
    let check = &r.json()["steps"][0]["checks"][0];
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("must be `listening on IP:PORT`"),
        "{}",
        r.dump()
    );
    assert_eq!(check["got"], "--addr 127.0.0.1:0", "{}", r.dump());
}

#[test]
fn a_human_failure_shows_transcript_expected_got_and_hint_without_colour() {
    let r = run(
        &[
            "verify",
            "3",
            "--path",
            "checker/fixtures/mutant_server",
            "--check",
            "valid_events",
        ],
        &[("MUTANT_DEFECT", "no_flush")],
    );
    assert_eq!(r.code(), Some(1), "{}", r.dump());
    let out = r.stdout();
    for needle in [
        "✘ valid_events",
        "[client 1] -> {",
        "[checker] $ ",
        "got:",
        "hint:",
        "flush",
        "0 of 1 check passed",
    ] {
        assert!(out.contains(needle), "missing {needle:?}{}", r.dump());
    }
    assert!(
        !out.contains('\x1b'),
        "colour codes in piped output{}",
        r.dump()
    );
}

// ---------------------------------------------------------------------------------------
// No orphans: the servers the checker starts die with it, however it ends.
// ---------------------------------------------------------------------------------------

/// Processes whose parent is `pid`, with their executable paths.
fn children_of(pid: u32) -> Vec<(u32, PathBuf)> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == pid)
        .map(|p| (p.pid, p.exe))
        .collect()
}

/// Every running process whose executable is `exe`.
fn processes_of(exe: &std::path::Path) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|p| p.exe == exe)
        .map(|p| p.pid)
        .collect()
}

/// Starts a long `verify`, waits for its first server, ends the checker with `signal`, and
/// requires every server it started to be gone.
fn no_orphan_after(signal: nix::sys::signal::Signal, expected_code: Option<i32>) {
    let _turn = one_at_a_time();
    let mut child = checker(&[
        "verify",
        "10",
        "--path",
        "checker/fixtures/mutant_server",
        "--format",
        "json",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let checker_pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    let server = loop {
        let servers: Vec<_> = children_of(checker_pid)
            .into_iter()
            .filter(|(_, exe)| exe.to_string_lossy().ends_with("mutant-server"))
            .collect();
        if let Some(&(pid, _)) = servers.first() {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the checker started no server within 120 s"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the checker ended ({status}) before starting a server");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(checker_pid as i32), signal).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        expected_code,
        "checker exit after {signal}: {status}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(server) {
        assert!(
            Instant::now() < deadline,
            "server {server} still running 5 s after the checker got {signal}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn ctrl_c_of_the_checker_kills_its_servers() {
    no_orphan_after(nix::sys::signal::Signal::SIGINT, Some(130));
}

#[test]
fn sigterm_of_the_checker_kills_its_servers() {
    no_orphan_after(nix::sys::signal::Signal::SIGTERM, Some(130));
}

#[test]
fn sigkill_of_the_checker_still_kills_its_servers() {
    no_orphan_after(nix::sys::signal::Signal::SIGKILL, None);
}

#[test]
fn the_checker_runs_from_any_folder_inside_the_kit() {
    let mut cmd = checker(&["steps"]);
    cmd.current_dir(root().join("book"));
    let out = cmd.output().unwrap();
    assert!(out.status.success());
}

#[test]
fn a_todo_hit_is_diagnosed_as_not_implemented_yet_with_its_location() {
    let r = run(
        &["verify", "5", "--path", "checker/fixtures/mutant_server"],
        &[("MUTANT_DEFECT", "unfinished")],
    );
    assert_eq!(r.code(), Some(1), "{}", r.dump());
    let out = r.stdout();
    assert!(
        out.contains("step 05 is not implemented yet: replace the todo!() at checker/fixtures/mutant_server/src/conn.rs:"),
        "{}",
        r.dump()
    );
    // The step's closing line leads with the diagnosis, not with a count of failed checks.
    let last = out.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert!(
        last.contains("→ step 05 is not implemented yet"),
        "{}",
        r.dump()
    );
}

#[test]
fn a_server_that_eats_memory_is_stopped_and_a_failure_can_be_replayed() {
    let fixture = "checker/fixtures/mutant_server";
    let r = run(
        &[
            "verify",
            "3",
            "--path",
            fixture,
            "--check",
            "long_line_memory_bounded",
            "--memory-limit-mb",
            "8",
        ],
        &[("MUTANT_DEFECT", "no_line_limit")],
    );
    assert_eq!(r.code(), Some(1), "{}", r.dump());
    assert!(
        r.stdout()
            .contains("used more than 8 MiB of memory and was stopped"),
        "{}",
        r.dump()
    );

    // The failure left a replay file; replaying it against the same server shows the traffic.
    let r = run(
        &["verify", "3", "--path", fixture, "--check", "valid_events"],
        &[("MUTANT_DEFECT", "no_flush")],
    );
    let line = r
        .stdout()
        .lines()
        .find(|l| l.contains("replay it:"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no replay line{}", r.dump()));
    let file = line.rsplit(' ').next().unwrap().to_string();
    let replay = run(
        &["replay", &file, "--path", fixture],
        &[("MUTANT_DEFECT", "no_flush")],
    );
    assert_eq!(replay.code(), Some(0), "{}", replay.dump());
    let out = replay.stdout();
    assert!(
        out.contains("replay · step 03 · valid_events"),
        "{}",
        replay.dump()
    );
    assert!(
        out.contains(r#"[client 1] -> {"action":"buy","amount":100,"user":"alice"}"#),
        "{}",
        replay.dump()
    );
    // Waiting out the replies is how a replay ends, not a timeout worth showing.
    assert!(
        !out.contains("timed out waiting for a reply"),
        "{}",
        replay.dump()
    );
    // Fixed (no defect), the same traffic gets its replies.
    let fixed = run(&["replay", &file, "--path", fixture], &[]);
    assert!(
        fixed
            .stdout()
            .contains(r#"[client 1] <- {"status":"accepted"}"#),
        "{}",
        fixed.dump()
    );
}

#[test]
fn a_hundred_runs_ended_at_random_moments_leave_no_server_behind() {
    use nix::sys::signal::Signal;
    let _turn = one_at_a_time();
    // The fixture server, built once; each run then starts in milliseconds.
    let built = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "-q",
            "-p",
            "mutant-server",
            "--message-format=json",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let exe: PathBuf = String::from_utf8_lossy(&built.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|m| {
            m["executable"]
                .as_str()
                .filter(|e| e.ends_with("mutant-server"))
                .map(PathBuf::from)
        })
        .expect("cargo names the fixture's executable");
    let before = processes_of(&exe);
    let mut seed: u64 = 0x0bad_5eed;
    for run in 0..100 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let signal = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL][run % 3];
        let mut child = checker(&[
            "verify",
            "10",
            "--bin",
            exe.to_str().unwrap(),
            "--format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        // Ends the run somewhere in its first 400 ms: before, during or between checks.
        std::thread::sleep(Duration::from_millis(seed % 400));
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal);
        child.wait().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<u32> = processes_of(&exe)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "servers left behind after 100 interrupted runs: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// The companion verbs that need no learner state, checked with assert_cmd and predicates.
// ---------------------------------------------------------------------------------------

fn cmd() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("checker").unwrap();
    c.current_dir(root()).env("NO_COLOR", "1");
    c
}

#[test]
fn demo_shows_the_blocking_server_making_a_client_wait_and_the_async_one_not() {
    use predicates::prelude::*;
    let _turn = one_at_a_time();
    cmd()
        .args(["demo", "1", "--solution"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "has waited 1.5 s and heard nothing",
        ))
        .stdout(predicate::str::contains(
            "Lesson: Blocking I/O is poison for servers.",
        ));
    cmd()
        .args(["demo", "2", "--solution"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("nobody waits for anybody"));
    cmd()
        .args(["demo", "10", "--solution"])
        .assert()
        .code(0)
        .stdout(
        predicate::str::is_match(
            r"(\d+) events were promised \(accepted\) and (\d+) were processed: nothing was lost",
        )
        .unwrap(),
    );
}

#[test]
fn solution_names_the_reference_and_how_to_compare() {
    use predicates::prelude::*;
    cmd()
        .args(["solution", "5", "--yes"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("solutions/05_backpressure"))
        .stdout(predicate::str::contains("diff 05"));
    cmd()
        .args(["solution", "42"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("there is no step \"42\""));
}

#[test]
fn the_reference_of_a_step_not_passed_is_shown_only_when_asked_for() {
    use predicates::prelude::*;
    // No terminal to ask on (the test's stdin is not one): --yes or nothing.
    for verb in ["diff", "solution"] {
        cmd()
            .args([verb, "12"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("add --yes"));
    }
}

#[test]
fn hints_are_counted_and_a_teacher_sees_them_all() {
    use predicates::prelude::*;
    let hints = crate::util::step_entry(3)["hints"]
        .as_array()
        .unwrap()
        .len();
    cmd()
        .args(["hint", "3", "--all"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!("hint 1 of {hints}:")))
        .stdout(predicate::str::contains(format!(
            "hint {hints} of {hints}:"
        )));
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    // `checker verify 01 --solution | head -1` once `head` has gone. The read end is closed
    // before the checker starts, so its first write to stdout meets a broken pipe, whatever
    // the timing. (Its children are stopped on that path by the same call as on Ctrl+C.)
    for args in [
        &["verify", "01", "--solution"][..],
        &["diff", "01", "--yes"],
    ] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = checker(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .expect("the checker runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "checker {args:?} panicked on a closed pipe:\n{stderr}"
        );
        assert_eq!(out.status.code(), Some(0), "checker {args:?}: {stderr}");
    }
}

#[test]
fn suggested_commands_use_the_way_the_checker_was_run() {
    // Run by its path, outside cargo: the next steps it prints can be pasted as they are.
    let exe = env!("CARGO_BIN_EXE_checker");
    let out = checker(&[]).env_remove("CARGO").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{exe} verify")),
        "no `{exe} verify` in:\n{stdout}"
    );
    // Through cargo (which sets CARGO), the cargo form.
    let out = checker(&[]).env("CARGO", "cargo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("cargo run -p checker -- verify"),
        "{stdout}"
    );
}
