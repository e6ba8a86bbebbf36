//! The known-bad servers of `checker/fixtures/known_bad.toml`: the fixture servers with one
//! classic mistake switched on must be caught by the check written for it, with a diagnosis
//! that names what was observed; the same fixtures without a mistake, in each of their valid
//! designs, must pass (so a catch is the mistake's doing, not a broken fixture or a check that
//! over-fits the reference design).

use crate::util::{root, run, run_untimed, timed_checks, Run};
use serde::Deserialize;
use std::collections::BTreeSet;

#[derive(Deserialize)]
struct Table {
    variant: Vec<Variant>,
    design: Vec<Design>,
}

#[derive(Deserialize)]
struct Variant {
    fixture: String,
    defect: String,
    step: u32,
    check: String,
    says: Vec<String>,
    #[serde(default = "yes")]
    caught: bool,
    #[serde(default)]
    why: String,
}

#[derive(Deserialize)]
struct Design {
    fixture: String,
    design: String,
    steps: Vec<u32>,
    about: String,
}

fn yes() -> bool {
    true
}

fn table() -> Table {
    let text = std::fs::read_to_string(root().join("checker/fixtures/known_bad.toml")).unwrap();
    toml::from_str(&text).expect("checker/fixtures/known_bad.toml reads")
}

fn path(fixture: &str) -> String {
    format!("checker/fixtures/{fixture}")
}

/// How a row's checker run takes its turn: [`run`] or [`run_untimed`].
type Runner = fn(&[&str], &[(&str, &str)]) -> Run;

impl Variant {
    fn run(&self) -> Run {
        self.run_with(run)
    }

    fn run_with(&self, run: Runner) -> Run {
        let step = self.step.to_string();
        run(
            &[
                "verify",
                &step,
                "--path",
                &path(&self.fixture),
                "--check",
                &self.check,
                "--format",
                "json",
            ],
            &[("MUTANT_DEFECT", &self.defect), ("MUTANT_STEP", &step)],
        )
    }

    fn name(&self) -> String {
        format!("{} at step {:02}", self.defect, self.step)
    }
}

impl Design {
    fn run(&self, step: u32) -> Run {
        let step = step.to_string();
        run(
            &[
                "verify",
                &step,
                "--path",
                &path(&self.fixture),
                "--format",
                "json",
            ],
            &[
                ("MUTANT_DEFECT", ""),
                ("MUTANT_DESIGN", &self.design),
                ("MUTANT_STEP", &step),
            ],
        )
    }
}

/// What the report says about its one failed check, the transcript left out: the words a
/// learner reads as the diagnosis.
fn diagnosis(r: &Run) -> String {
    let report = r.json();
    let failed = report["steps"][0]["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["status"] == "fail");
    let Some(check) = failed else {
        return String::new();
    };
    ["message", "expected", "got", "hint"]
        .iter()
        .filter_map(|field| check[field].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the variant was caught as the table says: the one check failed.
fn caught(v: &Variant, r: &Run) -> bool {
    r.code() == Some(1) && r.failed_checks() == [v.check.clone()]
}

#[test]
fn every_valid_design_passes_its_steps() {
    let mut failed = Vec::new();
    for design in table().design {
        for &step in &design.steps {
            let r = design.run(step);
            if r.code() != Some(0) {
                failed.push(format!(
                    "{} {:?} ({}) at step {step:02}: failed {:?}{}",
                    design.fixture,
                    design.design,
                    design.about,
                    r.failed_checks(),
                    r.dump()
                ));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Runs every row that the suite catches: those of an untimed check two at a time (as a
/// `verify` runs them beside other checks), those of a timed check alone.
fn run_rows(rows: &[&Variant]) -> Vec<Run> {
    let timed = timed_checks();
    let next = std::sync::Mutex::new(0..rows.len());
    let done = std::sync::Mutex::new((0..rows.len()).map(|_| None).collect::<Vec<Option<Run>>>());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let Some(i) = next.lock().unwrap().next() else {
                    return;
                };
                let v = rows[i];
                let r = if timed.contains(&v.check) {
                    v.run()
                } else {
                    v.run_with(run_untimed)
                };
                done.lock().unwrap()[i] = Some(r);
            });
        }
    });
    done.into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every row ran"))
        .collect()
}

#[test]
fn timed_checks_are_found_in_the_checker_source() {
    let timed = timed_checks();
    for name in [
        "slow_reader_blocks_nobody",
        "fast_enough",
        "hold_scales_across_users",
    ] {
        assert!(timed.contains(name), "{name} is timed: {timed:?}");
    }
    assert!(!timed.contains("valid_events"), "{timed:?}");
}

#[test]
fn each_known_bad_server_is_caught_and_diagnosed() {
    let table = table();
    let mut wrong = Vec::new();
    let rows: Vec<&Variant> = table.variant.iter().filter(|v| v.caught).collect();
    for (v, r) in rows.iter().copied().zip(run_rows(&rows)) {
        if !caught(v, &r) {
            wrong.push(format!(
                "{}: expected {} to fail{}",
                v.name(),
                v.check,
                r.dump()
            ));
            continue;
        }
        let said = diagnosis(&r).to_lowercase();
        let has = |word: &String| said.contains(&word.to_lowercase());
        let missing: Vec<&String> = v.says.iter().filter(|w| !has(w)).collect();
        if !missing.is_empty() {
            wrong.push(format!(
                "{}: the diagnosis lacks {missing:?}:\n{said}",
                v.name()
            ));
        }
        // Another mistake's cause, named in full, where that mistake is not this one's twin
        // (the same words: two mistakes that look the same from outside).
        let own: BTreeSet<&String> = v.says.iter().collect();
        for other in table
            .variant
            .iter()
            .filter(|o| o.caught && !o.says.is_empty())
        {
            let theirs: BTreeSet<&String> = other.says.iter().collect();
            if !theirs.is_subset(&own) && other.says.iter().all(has) {
                wrong.push(format!(
                    "{}: the diagnosis names {}'s cause ({:?}):\n{said}",
                    v.name(),
                    other.name(),
                    other.says
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// Every defect a fixture offers has a row, every row names a defect the fixture has, and a
/// row the suite cannot catch says what does.
#[test]
fn the_table_covers_every_defect_of_the_fixtures() {
    let table = table();
    for (fixture, source) in [
        ("mutant_server", "src/defect.rs"),
        ("mutant_echo", "src/main.rs"),
    ] {
        // Each fixture's table of defects has rows of the shape `"name", step, "what"`.
        let text = std::fs::read_to_string(root().join(path(fixture)).join(source)).unwrap();
        let known: BTreeSet<String> = text
            .lines()
            .filter_map(|line| {
                let (_, rest) = line.split_once('"')?;
                let (name, rest) = rest.split_once("\", ")?;
                let (step, _) = rest.split_once(", \"")?;
                step.parse::<u32>().ok()?;
                (name != "unfinished").then(|| name.to_string())
            })
            .collect();
        let listed: BTreeSet<String> = table
            .variant
            .iter()
            .filter(|v| v.fixture == fixture)
            .map(|v| v.defect.clone())
            .collect();
        assert!(known.len() > 5, "{fixture}: no defects found in {source}");
        assert_eq!(known, listed, "{fixture}: defects and rows differ");
    }
    for v in &table.variant {
        assert!(
            v.caught == v.why.is_empty() && v.caught != v.says.is_empty(),
            "{}: a caught row says what its diagnosis names; a row not caught says why",
            v.name()
        );
    }
}

/// The catch rates: `RUNS` runs (20 by default) of every row, and of every valid design.
/// A measurement, not a test: `cargo test -p checker --test kit catch_rates -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn catch_rates() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let table = table();
    println!("| step | mistake | check | caught |\n|---|---|---|---|");
    for v in &table.variant {
        let hits = (0..runs).filter(|_| caught(v, &v.run())).count();
        println!(
            "| {:02} | `{}` | `{}` | {hits} of {runs} |",
            v.step, v.defect, v.check
        );
    }
    println!("\n| design | step | passed |\n|---|---|---|");
    for d in &table.design {
        for &step in &d.steps {
            let passes = (0..runs).filter(|_| d.run(step).code() == Some(0)).count();
            println!("| {} | {step:02} | {passes} of {runs} |", d.about);
        }
    }
}
