//! Classroom use: machine-readable results, grading many checkouts, and the machine check.

use crate::util::{checker, copy_dir, names, one_at_a_time, processes, root, run};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FIXTURE: &str = "checker/fixtures/mutant_server";

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("checker/results.schema.json")).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, doc: &serde_json::Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match checker/results.schema.json:\n{}",
        errors.join("\n")
    );
}

#[test]
fn json_results_follow_the_shipped_schema_and_the_schema_can_say_no() {
    let validator = schema();
    let pass = run(&["verify", "1", "--solution", "--format", "json"], &[]);
    assert_valid(&validator, &pass.json(), "a passing report");
    let fail = run(
        &[
            "verify",
            "3",
            "--path",
            FIXTURE,
            "--check",
            "valid_events",
            "--format",
            "json",
        ],
        &[("MUTANT_DEFECT", "no_flush")],
    );
    let doc = fail.json();
    assert_eq!(doc["status"], "fail", "{}", fail.dump());
    assert_valid(&validator, &doc, "a failing report");
    let mut broken = doc.clone();
    broken["steps"][0]["checks"][0]["status"] = "flaky".into();
    assert!(
        !validator.is_valid(&broken),
        "the schema accepts a status it does not define"
    );
}

#[test]
fn junit_results_read_back_with_a_junit_parser() {
    let r = run(&["verify", "1", "--solution", "--format", "junit"], &[]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    let suites = junit_parser::from_reader(std::io::Cursor::new(r.output.stdout.clone()))
        .unwrap_or_else(|e| panic!("{e}{}", r.dump()));
    assert_eq!(suites.suites.len(), 1);
    assert_eq!(suites.suites[0].cases.len(), names(1, "adds").len());
    assert!(
        suites.suites[0].cases.iter().all(|c| c.status.is_success()),
        "{}",
        r.dump()
    );

    let r = run(
        &[
            "verify",
            "3",
            "--path",
            FIXTURE,
            "--check",
            "valid_events",
            "--format",
            "junit",
        ],
        &[("MUTANT_DEFECT", "no_flush")],
    );
    assert_eq!(
        r.code(),
        Some(1),
        "same exit codes as the human format{}",
        r.dump()
    );
    assert!(
        !r.stdout().contains('\x1b'),
        "no colour in JUnit{}",
        r.dump()
    );
    let suites = junit_parser::from_reader(std::io::Cursor::new(r.output.stdout.clone())).unwrap();
    let case = &suites.suites[0].cases[0];
    assert!(case.status.is_failure(), "{}", r.dump());
    assert!(
        case.status.failure_as_ref().message.contains("none came"),
        "{}",
        r.dump()
    );
}

/// Processes working for the checkout `dir`: their working folder is inside it, or their
/// command line names it (a rustc job compiling a dependency works in cargo's registry, but
/// writes into the checkout's target folder).
fn processes_in(dir: &Path) -> Vec<u32> {
    let name = dir.to_string_lossy().into_owned();
    processes()
        .into_iter()
        .filter(|p| {
            p.cwd.starts_with(dir)
                || std::fs::read(format!("/proc/{}/cmdline", p.pid))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&name))
        })
        .map(|p| p.pid)
        .collect()
}

/// A learner's checkout with the first `solved` exercises solved (the solutions, named like the
/// exercises) and the later ones not there at all.
fn solved_checkout(dir: &Path, solved: usize) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("checker")).unwrap();
    for f in ["Cargo.lock", "checker/steps.toml"] {
        std::fs::copy(root().join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("Cargo.toml"),
        "[workspace]\nmembers = [\"exercises/*\"]\nresolver = \"2\"\n\n".to_string()
            + &workspace_tables(),
    )
    .unwrap();
    // Crate names of this checkout's own (`step01_blocking_echo_alice`): checkouts that share a
    // build folder must not overwrite each other's executables.
    let owner = format!("_{}", dir.file_name().unwrap().to_string_lossy()).replace('-', "_");
    for n in 1..=solved {
        let slug = crate::util::slug(n);
        copy_dir(
            &root().join("solutions").join(&slug),
            &dir.join("exercises").join(&slug),
            &|t| t.replace("_solution", &owner),
        );
    }
}

/// The root manifest's shared tables ([workspace.package], [workspace.dependencies], profiles).
fn workspace_tables() -> String {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    text[text.find("[workspace.package]").unwrap()..].to_string()
}

#[test]
fn report_grades_many_checkouts_and_survives_broken_and_hostile_ones() {
    let _turn = one_at_a_time();
    let base: PathBuf = root().join("target/report-scratch");
    let (alice, bob, mallory) = (base.join("alice"), base.join("bob"), base.join("mallory"));
    // Two steps solved and the rest not begun: the report's plumbing, not the grading of every
    // step again, which `solutions::every_solution_passes_its_own_suite` does.
    solved_checkout(&alice, 2);
    // The exercises' build cache of the other scratch kit, when there is one, saves a build.
    let _ = std::fs::create_dir_all(root().join("target/kit-scratch/target"));
    let _ = std::os::unix::fs::symlink(
        root().join("target/kit-scratch/target"),
        alice.join("target"),
    );
    let _ = std::fs::remove_dir_all(&bob);
    std::fs::create_dir_all(&bob).unwrap();
    std::fs::write(bob.join("notes.txt"), "not the kit").unwrap();

    let csv = base.join("grades.csv");
    let out = checker(&[
        "report",
        "--no-sandbox",
        alice.to_str().unwrap(),
        bob.to_str().unwrap(),
        "--jobs",
        "2",
        "--csv",
        csv.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let dump = format!("{table}\n{}", String::from_utf8_lossy(&out.stderr));
    // Without --no-sandbox, nothing is graded: the teacher is told what grading would run.
    let refused = checker(&["report", alice.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(
        said.contains("no sandbox") && said.contains("--no-sandbox") && refused.stdout.is_empty(),
        "{said}"
    );
    // bob's folder is not a checkout: the table says so, and the exit code too.
    assert_eq!(out.status.code(), Some(1), "{dump}");
    assert!(
        table.contains("| alice | 2 | 03_parse_events/build |"),
        "{dump}"
    );
    assert!(
        table.contains("| bob | - | not an eventkit checkout"),
        "{dump}"
    );
    let csv = std::fs::read_to_string(csv).unwrap();
    assert!(
        csv.starts_with(
            "learner,steps_passed,first_failing_check,seconds\n\"alice\",2,\"03_parse_events/build\","
        ),
        "{csv}"
    );

    // A checkout whose build never ends is stopped at the time limit, with its whole process
    // group: nothing of it is left running. It shares alice's warm build cache, so that its
    // endless build script is running well before the limit (and outlives a checker that was
    // merely killed: it belongs to cargo's process group, not the checker's).
    let _ = std::fs::remove_dir_all(&mallory);
    solved_checkout(&mallory, 2);
    let _ = std::os::unix::fs::symlink(
        root().join("target/kit-scratch/target"),
        mallory.join("target"),
    );
    std::fs::write(
        mallory.join("exercises/01_blocking_echo/build.rs"),
        "fn main() { loop { std::thread::sleep(std::time::Duration::from_secs(1)); } }\n",
    )
    .unwrap();
    // A folder that does not exist (a shell pattern that matched nothing) is an error at once.
    let missing = base.join("nobody/*");
    let out = checker(&["report", "--no-sandbox", missing.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a folder"), "{stderr}");

    let started = Instant::now();
    let out = checker(&[
        "report",
        "--no-sandbox",
        mallory.to_str().unwrap(),
        "--timeout",
        "5",
    ])
    .output()
    .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table.contains("| mallory | - | timed out after 5 s |"),
        "{table}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the time limit was not kept"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_in(&mallory).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes of the stopped checkout are still running: {:?}",
            processes_in(&mallory)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn doctor_passes_here_and_names_the_fix_for_a_low_file_limit() {
    let r = run(&["doctor"], &[]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert!(r.stdout().contains("ready for the course"), "{}", r.dump());
    let low = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "ulimit -n 256 && exec {} doctor",
                env!("CARGO_BIN_EXE_checker")
            ),
        ])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&low.stdout);
    assert_eq!(low.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✘ open files allowed: 256") && text.contains("ulimit -n 4096"),
        "{text}"
    );
}

#[test]
fn the_classroom_autograding_commands_grade_a_solved_checkout() {
    let _turn = one_at_a_time();
    let text = std::fs::read_to_string(root().join(".github/classroom/autograding.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tests = config["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 10, "one autograding test per step");
    // The same checkout as the report test's, crate names and all: whichever runs second finds
    // its crates built.
    let alice = root().join("target/report-scratch/alice");
    solved_checkout(&alice, 10);
    let _ = std::fs::create_dir_all(root().join("target/kit-scratch/target"));
    let _ = std::os::unix::fs::symlink(
        root().join("target/kit-scratch/target"),
        alice.join("target"),
    );
    let exe = env!("CARGO_BIN_EXE_checker");
    for (n, test) in tests.iter().enumerate() {
        let command = test["run"].as_str().unwrap();
        assert!(
            test["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("step {:02} · ", n + 1)),
            "{test}"
        );
        // The same command, with the checker already built instead of `cargo run`.
        let local = command.replace("cargo run -q -p checker --", exe);
        assert_ne!(
            local, command,
            "the command no longer runs the checker: {command}"
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &local])
            .current_dir(&alice)
            .env("CARGO_BUILD_BUILD_DIR", crate::util::shared_build_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command} failed on a solved checkout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
