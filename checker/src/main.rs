//! `checker`: builds a step's server, starts it, and runs that step's black-box acceptance
//! suite over real TCP, then explains every failure with a transcript and a hint.
//!
//! Module map:
//! - `catalog`: the ten steps (`checker/steps.toml`);
//! - `build`: `cargo build` of the crates to grade;
//! - `server`: the server under test as a child process, killed on every exit path;
//! - `client`, `transcript`, `reply`, `ledger`: the test client, what it saw, what replies
//!   must be and the checker's own model of balances;
//! - `check`, `failure`: checks as data and the runner;
//! - `steps`: every check, one module per step;
//! - `report`: human and JSON output.
//!
//! Exit codes: 0 every check passed, 1 a check failed, 2 the checker could not run (build
//! failed, no such step, bad arguments).

mod build;
mod catalog;
mod check;
mod client;
mod failure;
mod ledger;
mod reply;
mod report;
mod server;
mod steps;
mod transcript;

use anyhow::{bail, Result};
use catalog::Step;
use check::Target;
use clap::{Parser, Subcommand, ValueEnum};
use report::{StepOutcome, StepReport, Style};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "checker",
    version,
    about = "Grades the eventkit servers, step by step, over real TCP."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a step's server and run its acceptance suite.
    Verify(VerifyArgs),
    /// List the steps and the checks each one runs.
    Steps,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The step: 5, 05, step05 or 05_backpressure.
    #[arg(required_unless_present = "all")]
    step: Option<String>,
    /// Every step, in order.
    #[arg(long, conflicts_with = "step")]
    all: bool,
    /// Grade the reference server in solutions/ instead of your exercise.
    #[arg(long)]
    solution: bool,
    /// Grade the crate in this folder (built with cargo) instead.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["solution", "bin", "all"])]
    path: Option<PathBuf>,
    /// Grade this already-built server executable instead.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["solution", "path", "all"])]
    bin: Option<PathBuf>,
    /// Run only this check of the suite (repeat for several).
    #[arg(long = "check", value_name = "NAME")]
    checks: Vec<String>,
    /// Output for people, or one JSON document for tools.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// No colour, even on a terminal (NO_COLOR works too).
    #[arg(long)]
    no_color: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A panic inside a check is caught and reported with the check; print nothing for it here.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with(check::CHECK_THREAD))
        {
            default_hook(info);
        }
    }));
    // Ctrl+C or SIGTERM of the checker: kill every server and build it started, then leave.
    let _ = ctrlc::set_handler(|| {
        let n = server::kill_all_live();
        eprintln!("\ninterrupted: stopped {n} child process group(s)");
        std::process::exit(130);
    });
    let result = match cli.command {
        Command::Verify(args) => verify(args),
        Command::Steps => list_steps(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn list_steps() -> Result<ExitCode> {
    for step in catalog::steps() {
        println!("{} · {} ({})", step.label(), step.title, step.slug);
        println!("    lesson: {}", step.lesson);
        println!("    checks: {}", step.checks.join(", "));
        for hint in &step.hints {
            println!("    hint: {hint}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What to grade for one step.
enum Source {
    Crate(PathBuf),
    Binary(PathBuf),
}

fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let root = build::workspace_root()?;
    let selected: Vec<&'static Step> = match &args.step {
        Some(s) => vec![catalog::find(s)?],
        None => catalog::steps().iter().collect(),
    };
    for name in &args.checks {
        if steps::find(name).is_none() {
            bail!("there is no check named {name:?}: `checker steps` lists them");
        }
    }
    let style = Style::detect(args.no_color);
    let human = args.format == Format::Human;

    // Decide what each step grades, and build every crate in one cargo run.
    let mut plan = Vec::new();
    for &step in &selected {
        let source = if let Some(bin) = &args.bin {
            Ok(Source::Binary(bin.clone()))
        } else if let Some(dir) = &args.path {
            Ok(Source::Crate(dir.clone()))
        } else {
            let rel = if args.solution {
                step.solution_dir()
            } else {
                step.exercise_dir()
            };
            let dir = root.join(&rel);
            if dir.join("Cargo.toml").is_file() {
                Ok(Source::Crate(dir))
            } else if args.solution {
                Err(format!("{rel} is missing from this checkout"))
            } else {
                Err(format!(
                    "{rel} does not exist yet: there is no exercise for {} in this checkout. Grade the reference server with `checker verify {:02} --solution`.",
                    step.label(),
                    step.number
                ))
            }
        };
        plan.push((step, source));
    }
    let crates: Vec<PathBuf> = plan
        .iter()
        .filter_map(|(_, s)| match s {
            Ok(Source::Crate(dir)) => Some(dir.clone()),
            _ => None,
        })
        .collect();
    let built = if crates.is_empty() {
        Default::default()
    } else {
        build::build(&root, &crates)?
    };

    let mut reports = Vec::new();
    for (step, source) in plan {
        let (target, bin) = match source {
            Err(e) => (step.exercise_dir(), Err(e)),
            Ok(Source::Binary(bin)) => (bin.display().to_string(), Ok(bin)),
            Ok(Source::Crate(dir)) => {
                let shown = dir
                    .strip_prefix(&root)
                    .unwrap_or(&dir)
                    .display()
                    .to_string();
                let exe = dir.canonicalize().ok().and_then(|d| built.get(&d).cloned());
                let bin = exe.ok_or_else(|| format!("the build of {shown} failed (cargo's errors are above): fix them and run the checker again"));
                (shown, bin)
            }
        };
        if human {
            println!("{}", report::heading(style, step, &target));
        }
        let outcome = match bin {
            Err(e) => StepOutcome::Error(e),
            Ok(bin) => {
                StepOutcome::Ran(run_suite(step, &Target { bin }, &args.checks, human, style))
            }
        };
        let report = StepReport {
            step,
            target,
            outcome,
        };
        if human {
            println!("{}\n", report::step_summary(style, &report));
        }
        reports.push(report);
    }

    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::to_json(&reports))?
        );
    } else if reports.len() > 1 {
        let passed = reports.iter().filter(|r| r.status() == "pass").count();
        println!("{passed} of {} steps passed", reports.len());
    }
    let code = if reports.iter().any(|r| r.status() == "error") {
        2
    } else if reports.iter().any(|r| r.status() == "fail") {
        1
    } else {
        0
    };
    Ok(ExitCode::from(code))
}

/// Runs the step's checks (or the chosen ones among them), printing each as it finishes.
fn run_suite(
    step: &'static Step,
    target: &Target,
    only: &[String],
    human: bool,
    style: Style,
) -> Vec<check::CheckResult> {
    step.checks
        .iter()
        .filter(|name| only.is_empty() || only.contains(name))
        .filter_map(|name| steps::find(name))
        .map(|c| {
            let result = check::run_one(step, target, c);
            if human {
                println!("{}", report::check_line(style, &result));
            }
            result
        })
        .collect()
}
