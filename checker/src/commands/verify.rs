//! `checker verify`: build what is graded, run each step's suite, report, remember.

use crate::catalog::{self, Step};
use crate::harness::check::{Check, Target};
use crate::harness::runner;
use crate::harness::runner::CheckResult;
use crate::output::{human, StepOutcome, StepReport, Style};
use crate::progress::{Progress, Track};
use crate::{build, steps};
use anyhow::{bail, Result};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;

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
    let learner = Progress::load(root);
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
                Source::Exercise => {
                    let fix = if learner.track == Track::Own {
                        format!("`{} track own` creates your crates", crate::invocation())
                    } else {
                        format!(
                            "restore the pristine exercise with `{} reset {:02}`",
                            crate::invocation(),
                            step.number
                        )
                    };
                    (
                        existing(
                            root,
                            &learner.learner_dir(step),
                            &format!("does not exist: {fix}"),
                        ),
                        false,
                    )
                }
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
        let (target, bin, source) = match dir {
            Err(e) => (learner.learner_dir(step), Err(e), None),
            Ok(bin) if is_binary => (bin.display().to_string(), Ok(bin), None),
            Ok(dir) => {
                let bin = built.get(&dir).ok_or_else(|| built.failure(&shown(&dir)));
                let source = crate::harness::check::Source {
                    dir: dir.clone(),
                    root: root.to_path_buf(),
                };
                (shown(&dir), bin, Some(source))
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
                    source,
                };
                run_suite(step, &target, req)
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

/// How many checks run at the same time, each with its own servers and clients. Checks that
/// measure time against a bound run alone after them.
const LANES: usize = 6;

/// Runs the step's checks (or the chosen ones among them), printing each in the suite's order as
/// soon as it and every check before it have finished.
fn run_suite(step: &'static Step, target: &Target, req: &Request) -> StepOutcome {
    // The bonus steps' scenarios run on an earlier step with --production, or when named with
    // --check; the step's own suite always does.
    let production = catalog::production(step);
    let bonus = production
        .iter()
        .copied()
        .filter(|_| req.production || !req.only.is_empty());
    let chosen: Vec<&'static Check> = step
        .checks
        .iter()
        .map(String::as_str)
        .chain(bonus)
        .filter(|name| req.only.is_empty() || req.only.iter().any(|o| o == name))
        .filter_map(steps::find)
        .collect();
    if chosen.is_empty() {
        let named: Vec<String> = req
            .only
            .iter()
            .filter_map(|name| steps::find(name))
            .map(|c| format!("{} (from step {:02})", c.name, c.since))
            .collect();
        return StepOutcome::Error(format!(
            "step {:02} grades none of the checks named: {}",
            step.number,
            named.join(", ")
        ));
    }
    // The checks over TCP first, for the quickest word on the server; then the crate's own
    // tests, which may need a build of their own; then, one at a time, the checks that time
    // the server.
    let is_tests = |c: &&Check| steps::common::CRATE_TESTS.contains(&c.name);
    let order: Vec<&'static Check> = chosen
        .iter()
        .filter(|c| !c.alone && !is_tests(c))
        .chain(chosen.iter().filter(|c| !c.alone && is_tests(c)))
        .chain(chosen.iter().filter(|c| c.alone))
        .copied()
        .collect();
    let shared = order.iter().take_while(|c| !c.alone).count();
    let mut sink = Sink {
        results: (0..order.len()).map(|_| None).collect(),
        printed: 0,
        stop: false,
        req,
        production: &production,
    };
    // They are printed in that order, but the crate's tests start first: they take longest.
    let queue: VecDeque<usize> = (0..shared)
        .filter(|&i| is_tests(&order[i]))
        .chain((0..shared).filter(|&i| !is_tests(&order[i])))
        .collect();
    let queue = Mutex::new(queue);
    let stopped = AtomicBool::new(false);
    thread::scope(|scope| {
        let (done, finished) = mpsc::channel();
        for _ in 0..LANES.min(shared) {
            let (done, queue, order, stopped) = (done.clone(), &queue, &order, &stopped);
            scope.spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    let Some(i) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
                    else {
                        break;
                    };
                    if done
                        .send((i, runner::run_one(step, target, order[i])))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(done);
        for (i, result) in finished {
            sink.take(i, result);
            stopped.store(sink.stop, Ordering::Relaxed);
        }
    });
    for (i, check) in order.iter().enumerate().skip(shared) {
        if sink.stop {
            break;
        }
        sink.take(i, runner::run_one(step, target, check));
    }
    sink.flush();
    StepOutcome::Ran(sink.results.into_iter().flatten().collect())
}

/// Where a step's results land: kept in the suite's order, printed in it as they complete.
struct Sink<'a> {
    results: Vec<Option<CheckResult>>,
    /// How many results have been printed: results are printed in order, with no gap.
    printed: usize,
    /// Set once the step should stop: a todo!() hit, or a failure under --fail-fast.
    stop: bool,
    req: &'a Request,
    production: &'a [&'static str],
}

impl Sink<'_> {
    fn take(&mut self, i: usize, mut result: CheckResult) {
        // A scenario named with --check is what was asked for: its verdict counts.
        result.bonus = self.req.only.is_empty() && self.production.contains(&result.name);
        let failed = result.failure.is_some() && !result.bonus;
        // A todo!() hit says the step is not written yet: one line for the step, not one
        // failure per check.
        let unfinished = result.failure.as_ref().is_some_and(|f| f.todo.is_some());
        self.stop |= unfinished || (failed && self.req.fail_fast);
        self.results[i] = Some(result);
        while let Some(Some(r)) = self.results.get(self.printed) {
            self.print(r);
            self.printed += 1;
        }
    }

    /// Prints the results that finished after a gap left by checks that never ran.
    fn flush(&mut self) {
        for r in self.results[self.printed..].iter().flatten() {
            self.print(r);
        }
        self.printed = self.results.len();
    }

    fn print(&self, r: &CheckResult) {
        if !self.req.machine {
            println!("{}", human::check_line(self.req.style, r));
        }
    }
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
        Source::Exercise => root.join(Progress::load(root).learner_dir(step)),
    };
    let built = build::build(root, std::slice::from_ref(&dir))?;
    let shown = dir.strip_prefix(root).unwrap_or(&dir).display().to_string();
    built
        .get(&dir)
        .ok_or_else(|| anyhow::anyhow!("{}", built.failure(&shown)))
}
