//! The exercises as a learner meets them, in a scratch copy of the kit under `target/`, so
//! that a learner's own edits in `exercises/` can never make these tests fail. The scratch
//! exercises are made by `checker reset --all`, from the solutions and the checker's holes.

use crate::util::{copy_dir, names, one_at_a_time, root, shared_build_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh scratch kit: the workspace manifest (exercises and solutions only), the lock file,
/// the step catalogue and the solutions. Its `target/` is kept between runs to save builds.
fn scratch_kit() -> PathBuf {
    let dir = root().join("target/kit-scratch");
    for sub in ["exercises", "solutions", "checker", "own"] {
        let _ = std::fs::remove_dir_all(dir.join(sub));
    }
    let _ = std::fs::remove_file(dir.join("target/eventkit-progress.json"));
    copy_dir(&root().join("solutions"), &dir.join("solutions"), &|t| t);
    std::fs::create_dir_all(dir.join("checker")).unwrap();
    std::fs::create_dir_all(dir.join("exercises")).unwrap();
    std::fs::create_dir_all(dir.join("own")).unwrap();
    std::fs::copy(root().join("own/README.md"), dir.join("own/README.md")).unwrap();
    std::fs::copy(
        root().join("checker/steps.toml"),
        dir.join("checker/steps.toml"),
    )
    .unwrap();
    std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let manifest: String = manifest
        .lines()
        .map(|l| {
            if l.starts_with("members") {
                r#"members = ["exercises/*", "solutions/*", "own/*"]"#
            } else if l.starts_with("default-members") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    dir
}

/// A fresh scratch kit with every exercise pristine, and the turn to use it.
fn kit_with_every_exercise() -> (std::sync::RwLockWriteGuard<'static, ()>, PathBuf) {
    let turn = one_at_a_time();
    let kit = scratch_kit();
    run_ok(&kit, &["reset", "--all", "--yes"], 0);
    (turn, kit)
}

/// Runs the checker in the scratch kit.
fn checker(kit: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_checker"))
        .args(args)
        .current_dir(kit)
        .env("NO_COLOR", "1")
        // A nested cargo must not think it builds the kit's own workspace: its own target
        // folder, and the kit's intermediate files.
        .env_remove("CARGO_TARGET_DIR")
        .env("CARGO_BUILD_BUILD_DIR", shared_build_dir())
        .output()
        .unwrap();
    out
}

fn dump(args: &[&str], out: &Output) -> String {
    format!(
        "\n$ checker {}\nstatus: {}\n~~~ stdout\n{}\n~~~ stderr\n{}\n~~~",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_ok(kit: &Path, args: &[&str], code: i32) -> String {
    let out = checker(kit, args);
    assert_eq!(out.status.code(), Some(code), "{}", dump(args, &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The checks step `n` adds for the first time (not those it brings back after an earlier step
/// retired them: a pristine skeleton may well pass those, its holes being elsewhere).
fn new_checks(n: usize) -> Vec<String> {
    let earlier: Vec<String> = (1..n).flat_map(|k| names(k, "adds")).collect();
    names(n, "adds")
        .into_iter()
        .filter(|c| !earlier.contains(c))
        .collect()
}

#[test]
fn pristine_skeletons_fail_with_a_diagnosis_and_the_journey_works() {
    let _turn = one_at_a_time();
    let kit = scratch_kit();
    let out = run_ok(&kit, &["reset", "--all", "--yes"], 0);
    assert!(out.contains("exercises/12_fast is pristine again"), "{out}");

    // 1. Every pristine skeleton builds, and fails every check its step adds, each with the
    //    "not implemented yet" diagnosis that points into the exercise.
    let mut wrong = Vec::new();
    for n in 1..=12 {
        let checks = new_checks(n);
        let mut args = vec![
            "verify".to_string(),
            n.to_string(),
            "--format".into(),
            "json".into(),
        ];
        for c in &checks {
            args.extend(["--check".to_string(), c.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = checker(&kit, &args);
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}{}", dump(&args, &out)));
        let step = &report["steps"][0];
        let slug = step["slug"].as_str().unwrap().to_string();
        for c in step["checks"].as_array().unwrap() {
            let message = c["message"].as_str().unwrap_or("");
            let diagnosed = message.contains(&format!(
                "{} is not implemented yet: replace the todo!() at exercises/{slug}/src/",
                format_args!("step {n:02}")
            ));
            if c["status"] != "fail" || !diagnosed {
                wrong.push(format!("{slug} {}: {} {message:?}", c["name"], c["status"]));
            }
        }
        if out.status.code() != Some(1) {
            wrong.push(format!(
                "{slug}: exit code {:?}{}",
                out.status.code(),
                dump(&args, &out)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "pristine skeletons that do not fail as they should:\n{}",
        wrong.join("\n")
    );

    // A demo of a pristine skeleton says the same, instead of narrating what did not happen.
    let demo = run_ok(&kit, &["demo", "2"], 1);
    assert!(
        demo.contains("the demo stopped: step 02 is not implemented yet: replace the todo!() at exercises/02_async_echo/src/")
            && !demo.contains("has waited"),
        "{demo}"
    );

    // 2. The journey: the status lands on step 01; solving it passes; list shows it; reset
    //    brings the skeleton back and it fails again.
    let status = run_ok(&kit, &[], 0);
    assert!(
        status.contains("0 of 10 steps passed + 0 of 2 bonus") && status.contains("Next: step 01"),
        "{status}"
    );
    // The learner's finished lib.rs: the reference's, without the book's include markers.
    let solved: String = std::fs::read_to_string(kit.join("solutions/01_blocking_echo/src/lib.rs"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("// ANCHOR"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(kit.join("exercises/01_blocking_echo/src/lib.rs"), solved).unwrap();
    let out = run_ok(&kit, &["verify"], 0);
    assert!(
        out.contains(&format!(
            "{n} of {n} checks passed",
            n = new_checks(1).len()
        )) && out.contains("On to step 02"),
        "{out}"
    );
    let list = run_ok(&kit, &["list"], 0);
    let line01 = list.lines().find(|l| l.contains(" 01 ")).unwrap();
    assert!(line01.contains("passed"), "{list}");
    assert!(
        list.lines()
            .find(|l| l.contains(" 02 "))
            .unwrap()
            .starts_with('→'),
        "{list}"
    );
    // Only main.rs still differs: the skeleton's `#![allow(unused)]`, to delete once done.
    let diff = run_ok(&kit, &["diff", "1", "--yes"], 0);
    assert!(
        !diff.contains("src/lib.rs") && diff.contains("-#![allow(unused)]"),
        "{diff}"
    );
    let hint = run_ok(&kit, &["hint", "2"], 0);
    assert!(
        hint.contains("hint 1 of 4:") && !hint.contains("hint 2 of 4:"),
        "one hint at a time, counted: {hint}"
    );
    let hint = run_ok(&kit, &["hint", "2"], 0);
    assert!(
        hint.contains("hint 2 of 4:"),
        "a second hint the second time: {hint}"
    );

    // Reset keeps the learner's version: here, the solved step 01.
    let mine = std::fs::read_to_string(kit.join("exercises/01_blocking_echo/src/lib.rs")).unwrap();
    let out = run_ok(&kit, &["reset", "1", "--yes"], 0);
    let saved = out
        .split("saved in ")
        .nth(1)
        .unwrap_or_else(|| panic!("reset did not say where it saved: {out}"))
        .trim();
    assert!(
        saved.starts_with("target/eventkit-saved/01_blocking_echo-"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(kit.join(saved).join("src/lib.rs")).unwrap(),
        mine,
        "the saved copy is the learner's version"
    );
    assert!(kit.join(saved).join("Cargo.toml").is_file(), "{out}");
    let out = run_ok(&kit, &["verify", "1"], 1);
    assert!(out.contains("step 01 is not implemented yet"), "{out}");
    let list = run_ok(&kit, &["list"], 0);
    assert!(
        list.lines()
            .find(|l| l.contains(" 01 "))
            .unwrap()
            .contains("failing"),
        "{list}"
    );
    let hint = run_ok(&kit, &["hint"], 0);
    assert!(
        hint.contains("Your last `verify` of step 01 failed"),
        "the failing check comes first: {hint}"
    );

    // 3. watch re-verifies the current step when a file is saved, and stops on Ctrl+C with
    //    nothing left behind.
    watch_reacts_to_a_save(&kit);

    // 4. An exercise that does not compile: the report blames the learner's code and carries
    //    the compiler's first error, even as JSON, where cargo's own output does not go.
    let lib = kit.join("exercises/01_blocking_echo/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        text.replacen("todo!()", "let x: u32 = \"a\"; todo!()", 1),
    )
    .unwrap();
    let args = ["verify", "1", "--format", "json"];
    let out = checker(&kit, &args);
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}{}", dump(&args, &out)));
    let error = report["steps"][0]["error"].as_str().unwrap_or("");
    assert!(
        error.contains("the build of exercises/01_blocking_echo failed: error[E0308]")
            && error.contains("at exercises/01_blocking_echo/src/lib.rs:"),
        "{}",
        dump(&args, &out)
    );
    run_ok(&kit, &["reset", "1", "--yes"], 0);

    // 5. Reset refuses to destroy work without a terminal to ask on, unless told --yes.
    let out = checker(&kit, &["reset", "1"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        dump(&["reset", "1"], &out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("add --yes"),
        "{}",
        dump(&["reset", "1"], &out)
    );
}

/// The not-implemented diagnosis of `step` (checks named by `checks`), from a JSON report.
fn diagnosed_not_implemented(kit: &Path, step: &str, checks: &[&str], at: &str) {
    let mut args = vec!["verify", step, "--format", "json"];
    for c in checks {
        args.extend(["--check", c]);
    }
    let out = checker(kit, &args);
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}{}", dump(&args, &out)));
    let message = report["steps"][0]["checks"][0]["message"]
        .as_str()
        .unwrap_or("");
    assert!(
        out.status.code() == Some(1)
            && message.contains("is not implemented yet: replace the todo!() at")
            && message.contains(at),
        "{}",
        dump(&args, &out)
    );
}

#[test]
fn three_tracks_guided_open_and_own_one_grader() {
    let (_turn, kit) = kit_with_every_exercise();
    let lib05 = kit.join("exercises/05_backpressure/src/lib.rs");
    let tracks = run_ok(&kit, &["track"], 0);
    assert!(tracks.contains("→ open"), "open is the default: {tracks}");
    // A pristine exercise follows a change of track; an edited one stays as the learner left it.
    assert!(!std::fs::read_to_string(&lib05)
        .unwrap()
        .contains("try_send"));
    let lib01 = kit.join("exercises/01_blocking_echo/src/lib.rs");
    let edited = std::fs::read_to_string(&lib01).unwrap() + "// mine\n";
    std::fs::write(&lib01, &edited).unwrap();
    let out = run_ok(&kit, &["track", "guided"], 0);
    assert!(
        out.contains("11 pristine exercises now have its TODOs")
            && out.contains("Exercises 01 have your edits"),
        "{out}"
    );
    assert!(std::fs::read_to_string(&lib05)
        .unwrap()
        .contains("`shared.events.try_send`"));
    assert_eq!(std::fs::read_to_string(&lib01).unwrap(), edited);
    assert!(run_ok(&kit, &["list"], 0).contains("track: guided"));
    // The guided skeleton fails with the same diagnosis as the open one (their code is the same:
    // a unit test of the checker compares them).
    diagnosed_not_implemented(
        &kit,
        "5",
        &["burst_gets_server_busy"],
        "exercises/05_backpressure/src/",
    );

    // The own track: two crates of the learner's, scaffolded; the scaffold fails step 01.
    let out = run_ok(&kit, &["track", "own"], 0);
    assert!(
        out.contains("created own/echo/") && out.contains("created own/server/"),
        "{out}"
    );
    let status = run_ok(&kit, &[], 0);
    assert!(status.contains("edit:      own/echo/src/"), "{status}");
    diagnosed_not_implemented(&kit, "1", &["echo_one_line"], "own/echo/src/main.rs");
    // catch-up refuses to overwrite without being told, then saves the learner's version.
    let mine = std::fs::read_to_string(kit.join("own/echo/src/main.rs")).unwrap();
    let out = checker(&kit, &["catch-up", "3"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        dump(&["catch-up", "3"], &out)
    );
    let out = run_ok(&kit, &["catch-up", "3", "--yes"], 0);
    let saved = out
        .lines()
        .find(|l| l.starts_with("own/echo is now the reference of step 02"))
        .and_then(|l| l.split("saved in ").nth(1))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        std::fs::read_to_string(kit.join(saved).join("src/main.rs")).unwrap(),
        mine
    );
    assert!(out.contains("own/server is now its scaffold"), "{out}");
    // Reference-derived own crates pass every step from 01 to 10, each with the checks it adds
    // (catch-up to k + 1 leaves step k's references in own/), and step 10 with its whole suite,
    // which holds every rule of steps 03 to 10 still in force: the regression check of the own
    // track.
    for k in 1..=10 {
        run_ok(&kit, &["catch-up", &(k + 1).to_string(), "--yes"], 0);
        let mut args = vec!["verify".to_string(), k.to_string()];
        for c in new_checks(k) {
            args.extend(["--check".to_string(), c]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_ok(&kit, &args, 0);
        let dir = if k <= 2 { "own/echo" } else { "own/server" };
        assert!(out.contains(dir), "step {k:02} grades {dir}: {out}");
    }
    let out = run_ok(&kit, &["verify", "10"], 0);
    assert!(
        out.contains("own/server") && out.contains("checks passed"),
        "{out}"
    );
    // Back to an exercise track: the exercises are where they were.
    run_ok(&kit, &["track", "open"], 0);
    assert!(run_ok(&kit, &[], 0).contains("exercises/"));
}

fn watch_reacts_to_a_save(kit: &Path) {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_checker"))
        .args(["watch", "--poll"])
        .current_dir(kit)
        .env("NO_COLOR", "1")
        .env("CARGO_BUILD_BUILD_DIR", shared_build_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |what: &str| -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(what) => return seen,
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "watch never printed {what:?}; it printed:\n{}",
                    seen.join("\n")
                ),
            }
        }
    };
    let first = wait_for("watching ");
    assert!(
        first.iter().any(|l| l.contains("step 01")),
        "the first run grades the current step: {first:?}"
    );
    // A save (a longer file) wakes the poll and starts a second run.
    let lib = kit.join("exercises/01_blocking_echo/src/lib.rs");
    let mut text = std::fs::read_to_string(&lib).unwrap();
    text.push_str("\n// saved again\n");
    std::fs::write(&lib, text).unwrap();
    let second = wait_for("watching ");
    assert!(
        second
            .iter()
            .any(|l| l.contains("step 01 is not implemented yet")),
        "the second run: {second:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "watch ends on Ctrl+C");
}

/// Step 09's demo checks what it shows: a server whose counters do not add up stops it, with
/// what it saw, instead of being narrated as if it were right.
#[test]
fn demo_09_stops_on_counters_that_do_not_add_up() {
    let (_turn, kit) = kit_with_every_exercise();
    // The reference's code as the learner's, but for one line: events turned away are not
    // counted as dropped.
    let from = kit.join("solutions/09_atomic_metrics/src");
    let to = kit.join("exercises/09_atomic_metrics/src");
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        // The exercise's crate is named without `_solution`.
        let mut text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("step09_atomic_metrics_solution", "step09_atomic_metrics");
        if path.ends_with("lib.rs") {
            let counted = "shared.metrics.event_dropped();";
            assert!(
                text.contains(counted),
                "lib.rs no longer counts drops with {counted}"
            );
            text = text.replace(counted, "");
        }
        std::fs::write(to.join(path.file_name().unwrap()), text).unwrap();
    }
    let out = run_ok(&kit, &["demo", "9"], 1);
    assert!(
        out.contains("the demo stopped:")
            && out.contains("still in the server, which holds at most 18")
            && !out.contains("every snapshot adds up"),
        "{out}"
    );
}
