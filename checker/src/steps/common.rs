//! What several steps' checks share: running the crate's own tests as a check.

use crate::fail;
use crate::harness::check::Ctx;
use crate::harness::failure::{Failure, Outcome};
use crate::sut::build::{build_tests, has_feature};
use crate::sut::crate_tests::{self, FailedTest};
use crate::sut::server::todo_location;
use std::time::Duration;

/// The checks that run the crate's own tests rather than traffic.
pub const CRATE_TESTS: [&str; 2] = ["unit_tests", "model_checks"];

/// How long a crate's own tests may run, all of them together.
const TESTS_LIMIT: Duration = Duration::from_secs(50);

/// Which of a crate's tests a check runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tests {
    /// Its unit tests: everything `cargo test` runs in its library and binaries.
    Unit,
    /// Its model checks: the tests in `model` modules, built with the `loom` feature.
    Models,
}

/// Builds and runs the crate's own tests of one kind, and fails with the first failure.
pub fn crate_tests(ctx: &mut Ctx, which: Tests) -> Outcome {
    let Some(source) = ctx.source().cloned() else {
        return ctx.skip("a server given as an executable brings no tests to run; grade its crate with --path to run them");
    };
    let (features, filter): (&[&str], Option<&str>) = match which {
        Tests::Unit => (&[], None),
        Tests::Models => {
            if !has_feature(&source.dir, "loom") {
                return ctx.skip("this crate has no `loom` feature, so it has no model checks to run (the kit's crates have one: see src/sync.rs)");
            }
            (&["loom"], Some("model::"))
        }
    };
    let why = match which {
        Tests::Unit => "the crate's unit tests",
        Tests::Models => "the crate's model checks (feature loom)",
    };
    let built = build_tests(&source.root, &source.dir, features, why)
        .map_err(|e| fail!("could not build the crate's tests: {e:#}"))?;
    if built.tests.is_empty() {
        let why = built.first_error().unwrap_or("cargo's output is above");
        return Err(fail!("the crate's tests do not compile: {why}")
            .hint("The server builds, but its tests do not: they use the code as the exercise gave it (names, signatures). Fix the first compiler error of `cargo test`."));
    }
    let run = crate_tests::run(&built.tests, &source.dir, filter, TESTS_LIMIT)
        .map_err(|e| fail!("could not run the crate's tests: {e:#}"))?;
    let kind = match which {
        Tests::Unit => "unit test",
        Tests::Models => "model check",
    };
    ctx.log.note(
        "checker",
        format!("{} {kind}s ran, {} failed", run.ran, run.failed.len()),
    );
    if run.timed_out {
        return Err(fail!("the crate's {kind}s did not finish within {} s", TESTS_LIMIT.as_secs())
            .hint("A test that never ends is usually a thread waiting forever: a lock never released, a channel nobody closes, a join on a thread that waits for the joiner."));
    }
    if let (Some(crashed), true) = (&run.crashed, run.failed.is_empty()) {
        // Its last words, without the backtrace's frames.
        let said: Vec<&str> = crashed
            .lines()
            .filter(|l| {
                let l = l.trim_start();
                !l.starts_with(|c: char| c.is_ascii_digit()) && !l.starts_with("at ")
            })
            .collect();
        for line in &said[said.len().saturating_sub(12)..] {
            ctx.log.note("tests", line.to_string());
        }
        if let Some(at) = todo_location(crashed) {
            return Err(Failure::unfinished(ctx.step, at));
        }
        let status = crashed.lines().next().unwrap_or_default();
        return Err(fail!("the crate's tests ended badly ({status}) before reporting a result")
            .hint("A test process that aborts usually panicked while it was already panicking (a panic in a Drop during a failed test, or inside a loom model): run the crate's tests yourself (`cargo test`, and `cargo test --features loom model` for the model checks) to see the first panic."));
    }
    if run.ran == 0 {
        return ctx.skip(match which {
            Tests::Unit => "the crate has no unit tests",
            Tests::Models => "the crate has no model checks (tests in a `model` module)",
        });
    }
    let Some(first) = run.failed.first() else {
        return Ok(());
    };
    for line in &first.output {
        ctx.log.note(&first.name, line.clone());
    }
    // A todo!() left in the code: the same diagnosis a server that hit one gets.
    if let Some(at) = todo_location(&first.output.join("\n")) {
        return Err(Failure::unfinished(ctx.step, at));
    }
    Err(failure_of(
        which,
        first,
        run.failed.len(),
        run.ran,
        &source.dir,
    ))
}

/// The failure of a crate's tests, named by the first test that failed and what it said.
fn failure_of(
    which: Tests,
    first: &FailedTest,
    failed: usize,
    ran: usize,
    dir: &std::path::Path,
) -> Failure {
    let crate_name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let said = first.message();
    match which {
        Tests::Unit => fail!("{failed} of the crate's {ran} unit tests failed; first: {}", first.name)
            .got(said)
            .hint(format!("These tests ship with the crate and test the code you wrote, piece by piece: the failing one says what it expected. Run them yourself with `cargo test` in {crate_name}.")),
        Tests::Models => fail!("a model check found an interleaving of threads that breaks a rule: {}", first.name)
            .got(said)
            .hint(format!("loom ran this test under every interleaving of its threads (and every value a relaxed atomic may show), and in one of them the assertion above failed: the code is correct only when the threads take turns the lucky way. Run it yourself with `cargo test --features loom model` in {crate_name}.")),
    }
}
