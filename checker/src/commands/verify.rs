//! `checker verify`: build what is graded, run each step's suite, report, remember.

use crate::catalog::{self, Step};
use crate::harness::check::Target;
use crate::harness::runner;
use crate::harness::runner::CheckResult;
use crate::output::{human, StepOutcome, StepReport, Style};
use crate::progress::Progress;
use crate::{build, steps};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// What to grade and how to show it.
pub struct Request {
    /// The steps, in order.
    pub steps: Vec<&'static Step>,
    pub source: Source,
    /// Only these checks (empty: the whole suite).
    pub only: Vec<String>,
    /// Output for tools (JSON, JUnit): no human lines on stdout.
    pub machine: bool,
    pub style: Style,
    /// Stop each step at its first failing check.
    pub fail_fast: bool,
    /// Also run the step's production scenarios (reported, not required).
    pub production: bool,
    /// A server using more resident memory than this is stopped.
    pub memory_limit_mib: u64,
}

/// Where the servers come from.
#[derive(Clone)]
pub enum Source {
    /// The learner's `exercises/<slug>` (progress is recorded).
    Exercise,
    /// The reference `solutions/<slug>`.
    Solution,
    /// A crate folder, built with cargo.
    Crate(PathBuf),
    /// An executable, already built.
    Binary(PathBuf),
}

impl Source {
    /// What the command line's `--bin`, `--path` and `--solution` name (your exercise if none).
    pub fn from_flags(bin: Option<PathBuf>, path: Option<PathBuf>, solution: bool) -> Source {
        match (bin, path, solution) {
            (Some(bin), _, _) => Source::Binary(bin),
            (None, Some(dir), _) => Source::Crate(dir),
            (None, None, true) => Source::Solution,
            (None, None, false) => Source::Exercise,
        }
    }
}

/// The exit code: 0 every check passed, 1 a check failed, 2 a step could not be graded.
pub fn exit_code(reports: &[StepReport]) -> u8 {
    if reports.iter().any(|r| r.status() == "error") {
        2
    } else if reports.iter().any(|r| r.status() == "fail") {
        1
    } else {
        0
    }
}

pub fn run(root: &Path, req: &Request) -> Result<Vec<StepReport>> {
    for name in &req.only {
        if steps::find(name).is_none() {
            bail!("there is no check named {name:?}: `checker steps` lists them");
        }
    }
    // A server executable that is not there would fail every check the same way.
    if let Source::Binary(bin) = &req.source {
        existing_binary(bin)?;
    }
    // Decide what each step grades, then build every crate in one cargo run.
    let plan: Vec<(&'static Step, Result<PathBuf, String>, bool)> = req
        .steps
        .iter()
        .map(|&step| {
            let (dir, is_binary) = match &req.source {
                Source::Binary(bin) => (Ok(bin.clone()), true),
                Source::Crate(dir) => (Ok(dir.clone()), false),
                Source::Solution => (
                    existing(root, &step.solution_dir(), "is missing from this checkout"),
                    false,
                ),
                Source::Exercise => (
                    existing(
                        root,
                        &step.exercise_dir(),
                        &format!(
                            "does not exist: restore the pristine exercise with `{} reset {:02}`",
                            crate::invocation(),
                            step.number
                        ),
                    ),
                    false,
                ),
            };
            (step, dir, is_binary)
        })
        .collect();
    let crates: Vec<PathBuf> = plan
        .iter()
        .filter(|(_, d, bin)| !bin && d.is_ok())
        .map(|(_, d, _)| d.clone().unwrap())
        .collect();
    let built = if crates.is_empty() {
        Default::default()
    } else {
        build::build(root, &crates)?
    };

    let mut progress = Progress::load(root);
    let mut reports = Vec::new();
    for (step, dir, is_binary) in plan {
        let shown = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
        let (target, bin) = match dir {
            Err(e) => (step.exercise_dir(), Err(e)),
            Ok(bin) if is_binary => (bin.display().to_string(), Ok(bin)),
            Ok(dir) => {
                let bin = built.get(&dir).ok_or_else(|| built.failure(&shown(&dir)));
                (shown(&dir), bin)
            }
        };
        if !req.machine {
            println!("{}", human::heading(req.style, step, &target));
        }
        let outcome = match bin {
            Err(e) => StepOutcome::Error(e),
            Ok(bin) => {
                let target = Target {
                    bin,
                    memory_limit_kib: req.memory_limit_mib * 1024,
                    replays: Some(root.join("target").join("eventkit-replays")),
                };
                StepOutcome::Ran(run_suite(step, &target, req))
            }
        };
        let report = StepReport {
            step,
            target,
            outcome,
        };
        if !req.machine {
            println!("{}\n", human::step_summary(req.style, &report));
        }
        if matches!(req.source, Source::Exercise) && req.only.is_empty() {
            progress.record(step, report.failure_summary());
        }
        reports.push(report);
    }
    if matches!(req.source, Source::Exercise) {
        progress.save(root);
    }
    Ok(reports)
}

fn existing(root: &Path, rel: &str, why: &str) -> Result<PathBuf, String> {
    let dir = root.join(rel);
    if dir.join("Cargo.toml").is_file() {
        Ok(dir)
    } else {
        Err(format!("{rel} {why}"))
    }
}

/// Runs the step's checks (or the chosen ones among them), printing each as it finishes.
fn run_suite(step: &'static Step, target: &Target, req: &Request) -> Vec<CheckResult> {
    let mut results = Vec::new();
    // The bonus steps' scenarios run on an earlier step with --production, or when named with
    // --check; the step's own suite always does.
    let production = catalog::production(step);
    let bonus = production
        .iter()
        .copied()
        .filter(|_| req.production || !req.only.is_empty());
    let chosen = step
        .checks
        .iter()
        .map(String::as_str)
        .chain(bonus)
        .filter(|name| req.only.is_empty() || req.only.iter().any(|o| o == name));
    for check in chosen.filter_map(steps::find) {
        let mut result = runner::run_one(step, target, check);
        // A scenario named with --check is what was asked for: its verdict counts.
        result.bonus = req.only.is_empty() && production.contains(&check.name);
        if !req.machine {
            println!("{}", human::check_line(req.style, &result));
        }
        let failed = result.failure.is_some() && !result.bonus;
        results.push(result);
        if failed && req.fail_fast {
            break;
        }
    }
    results
}

/// The steps a `verify` without `--all` grades: one, or it and every earlier one.
pub fn selection(step: &'static Step, previous: bool) -> Vec<&'static Step> {
    if previous {
        catalog::steps().iter().take(step.number).collect()
    } else {
        vec![step]
    }
}

/// `bin`, if it is a file: the server executable named by `--bin`.
fn existing_binary(bin: &Path) -> Result<PathBuf> {
    if !bin.is_file() {
        bail!(
            "{} is not a file: build your server first (`cargo build --release` gives \
             target/release/NAME), or name it right",
            bin.display()
        );
    }
    Ok(bin.to_path_buf())
}

/// Builds (if needed) and returns the executable that `source` names for `step`.
pub fn executable(root: &Path, step: &Step, source: &Source) -> Result<PathBuf> {
    let dir = match source {
        Source::Binary(bin) => return existing_binary(bin),
        Source::Crate(dir) => dir.clone(),
        Source::Solution => root.join(step.solution_dir()),
        Source::Exercise => root.join(step.exercise_dir()),
    };
    let built = build::build(root, std::slice::from_ref(&dir))?;
    let shown = dir.strip_prefix(root).unwrap_or(&dir).display().to_string();
    built
        .get(&dir)
        .ok_or_else(|| anyhow::anyhow!("{}", built.failure(&shown)))
}
