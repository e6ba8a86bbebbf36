//! `checker`: the learner's companion. It builds a step's server, runs that step's hidden
//! black-box acceptance suite over real TCP, explains every failure with a transcript and a
//! hint, and keeps track of where the learner is.
//!
//! Module map:
//! - `catalog`: the steps (`checker/steps.toml`) and their cumulative suites; `skeleton`:
//!   exercises derived from the solutions (`checker/skeletons.toml`); `progress`: the learner's
//!   results;
//! - `harness`: checks as data, the context they run in, the runner, failures and transcripts;
//! - `sut`: the system under test: cargo builds, process groups, the server as a child process;
//! - `oracle`: the checker's own client and knowledge of the protocol (replies, balances);
//! - `steps`: every check, a module per step;
//! - `commands`: the verbs (`verify`, `journey`, `watch`, `demo`, `replay`, `report`, `doctor`);
//! - `output`: results for people, as JSON, or as JUnit XML;
//! - `load`, `bench`: real traffic and the graphs of each step's pain.
//!
//! Exit codes: 0 success (every check passed), 1 a check failed, 2 the checker could not run
//! (build failed, no such step, bad arguments).

mod bench;
mod catalog;
mod commands;
mod harness;
mod load;
mod oracle;
mod output;
mod progress;
mod skeleton;
mod steps;
mod sut;

use anyhow::{bail, Result};
use catalog::Step;
use clap::{Parser, Subcommand, ValueEnum};
use commands::verify::{self, Source};
use commands::{demo, doctor, journey, replay, report, watch};
use output::Style;
use progress::Progress;
use std::path::PathBuf;
use std::process::ExitCode;
use sut::{build, process};

#[derive(Parser)]
#[command(
    name = "checker",
    version,
    about = "Your companion through the eventkit course: grades your server, step by step, over real TCP.",
    after_help = "Without a command: where you are, and what to do next."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// No colour, even on a terminal (NO_COLOR works too).
    #[arg(long, global = true)]
    no_color: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Build a step's server and run its acceptance suite (default: your current step).
    Verify(VerifyArgs),
    /// The ten steps, and how far you are with each.
    List,
    /// A hint for a step (default: your current step); one more each time you ask.
    Hint {
        /// The step: 5, 05, step05 or 05_backpressure.
        step: Option<String>,
        /// Every hint of the step at once, in order (for teachers), without counting them as
        /// asked for.
        #[arg(long)]
        all: bool,
    },
    /// Re-verify your current step every time you save a file.
    Watch {
        /// Poll the files instead of waiting for file events.
        #[arg(long)]
        poll: bool,
    },
    /// Your exercise against the reference solution, as a unified diff.
    Diff {
        /// The step: 5, 05, step05 or 05_backpressure.
        step: String,
        /// Do not ask before showing the reference of a step you have not passed.
        #[arg(long, short)]
        yes: bool,
    },
    /// Where the reference solution of a step is.
    Solution {
        /// The step: 5, 05, step05 or 05_backpressure.
        step: String,
        /// Do not ask before showing the reference of a step you have not passed.
        #[arg(long, short)]
        yes: bool,
    },
    /// Restore the pristine exercise of a step (your version is saved first, under target/).
    Reset {
        /// The step: 5, 05, step05 or 05_backpressure.
        #[arg(required_unless_present = "all")]
        step: Option<String>,
        /// Every step.
        #[arg(long, conflicts_with = "step")]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Your track: guided, open (the default) or own; without a name, the one you are on.
    Track {
        #[arg(value_enum)]
        track: Option<progress::Track>,
    },
    /// Own track: make your crates what they would be had you passed every step before STEP
    /// (your version is saved first, under target/).
    CatchUp {
        /// The step the class moves on to: 5, 05, step05 or 05_backpressure.
        step: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Watch a step's problem happen, live and narrated, against your server or the reference.
    Demo {
        /// The step: 5, 05, step05 or 05_backpressure.
        step: String,
        /// Run the demo against the reference server.
        #[arg(long)]
        solution: bool,
    },
    /// Every step with its lesson, checks and hints (for teachers and maintainers).
    Steps,
    /// Grade many learner checkouts (each a clone of the kit) and tabulate the results.
    Report {
        /// The checkouts, one folder each.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// How many checkouts are graded at the same time.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Seconds one checkout may take, build included, before it is stopped.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// Also write the table as CSV to this file.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Grade without a sandbox, accepting the risk: each checkout's build scripts and servers
        /// run as you, with your files and your network. `report` has no sandbox of its own
        /// yet, so it grades only with this flag (or grade in a CI runner instead).
        #[arg(long)]
        no_sandbox: bool,
    },
    /// Check that this machine is ready for the course (toolchain, ports, limits, offline build).
    Doctor,
    /// Replay a failed check's traffic (a file `verify` wrote) against a fresh server.
    Replay {
        /// The replay file, from target/eventkit-replays/.
        file: PathBuf,
        /// Against the reference server of the step instead of your exercise.
        #[arg(long)]
        solution: bool,
        /// Against this crate instead.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["solution", "bin"])]
        path: Option<PathBuf>,
        /// Against this executable instead.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["solution", "path"])]
        bin: Option<PathBuf>,
    },
    /// Load a step's server (built in release mode) with real traffic, and report rate and latency.
    Load(load::LoadArgs),
    /// Sweeps that show each step's pain as a graph (SVG, with the data as CSV and JSON).
    Bench(bench::BenchArgs),
    /// The echo ceiling server of `load --echo` (started by the checker itself).
    #[command(hide = true)]
    ServeEcho {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: std::net::SocketAddr,
    },
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The step: 5, 05, step05 or 05_backpressure (default: your current step).
    step: Option<String>,
    /// Every step, in order.
    #[arg(long, conflicts_with_all = ["step", "previous"])]
    all: bool,
    /// Also every earlier step (to catch regressions).
    #[arg(long)]
    previous: bool,
    /// Grade the reference server in solutions/ instead of your exercise.
    #[arg(long)]
    solution: bool,
    /// Grade the crate in this folder (built with cargo) instead.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["solution", "bin", "all", "previous"])]
    path: Option<PathBuf>,
    /// Grade this already-built server executable instead.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["solution", "path", "all", "previous"])]
    bin: Option<PathBuf>,
    /// Run only this check of the suite, or this production scenario (repeat for several).
    #[arg(long = "check", visible_alias = "scenario", value_name = "NAME")]
    checks: Vec<String>,
    /// Stop a step at its first failing check.
    #[arg(long)]
    fail_fast: bool,
    /// Also run the step's production scenarios: hostile input and faults, reported as bonus
    /// checks that the step does not require.
    #[arg(long)]
    production: bool,
    /// Stop a server that uses more resident memory than this (MiB), and fail the check.
    #[arg(long, value_name = "MIB", default_value_t = harness::check::DEFAULT_MEMORY_LIMIT_MIB)]
    memory_limit_mb: u64,
    /// Output for people, one JSON document (schema: checker/results.schema.json), or JUnit XML.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
    Junit,
}

/// How the learner runs the checker: through cargo, installed (on PATH), or by its path
/// (`target/debug/checker`), so that the commands it suggests can be pasted as they are.
pub fn invocation() -> &'static str {
    static HOW: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOW.get_or_init(|| {
        if std::env::var_os("CARGO").is_some() {
            return "cargo run -p checker --".into();
        }
        match std::env::args().next() {
            Some(path) if path.contains('/') => path,
            _ => "checker".into(),
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The book's tests hand every command line the book shows to this parser, flags together,
    // and want only its verdict: a command clap accepts does nothing more.
    if std::env::var_os("EVENTKIT_PARSE_ONLY").is_some() {
        return ExitCode::SUCCESS;
    }
    process::raise_open_files();
    // A panic inside a check is caught and reported with the check; print nothing for it here.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_broken_pipe(info) {
            // Whoever read our output has gone (`checker diff 03 | head`, or `less` closed):
            // not an error of the checker's. Stop every child, and leave quietly.
            process::kill_all_live();
            std::process::exit(0);
        }
        if !std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with(harness::runner::CHECK_THREAD))
        {
            default_hook(info);
        }
    }));
    // Ctrl+C or SIGTERM of the checker: kill every server and build it started, then leave.
    let _ = ctrlc::set_handler(|| {
        let n = process::kill_all_live();
        eprintln!("\ninterrupted: stopped {n} child process group(s)");
        std::process::exit(130);
    });
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether a panic is `println!` or `eprintln!` failing because the reader of our output closed
/// its end of the pipe.
fn is_broken_pipe(info: &std::panic::PanicHookInfo) -> bool {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    message.starts_with("failed printing to std") && message.contains("Broken pipe")
}

/// The step named on the command line, or the learner's current one.
fn step_or_current(root: &std::path::Path, step: &Option<String>) -> Result<&'static Step> {
    match step {
        Some(s) => catalog::find(s),
        None => Ok(Progress::load(root).current()),
    }
}

fn run(cli: Cli) -> Result<u8> {
    let style = Style::detect(cli.no_color);
    let root = build::workspace_root()?;
    match cli.command {
        None => journey::status(&root, style)?,
        Some(Command::List) => journey::list(&root, style)?,
        Some(Command::Hint { step, all }) => {
            journey::hint(&root, step_or_current(&root, &step)?, all, style)?
        }
        Some(Command::Watch { poll }) => watch::watch(&root, poll, style)?,
        Some(Command::Diff { step, yes }) => {
            journey::diff(&root, catalog::find(&step)?, yes, style)?
        }
        Some(Command::Solution { step, yes }) => {
            journey::solution(&root, catalog::find(&step)?, yes)?
        }
        Some(Command::Reset { step, all, yes }) => {
            let selected: Vec<&'static Step> = match step {
                Some(s) if !all => vec![catalog::find(&s)?],
                _ => catalog::steps().iter().collect(),
            };
            journey::reset(&root, &selected, yes)?
        }
        Some(Command::Track { track }) => journey::track(&root, track, style)?,
        Some(Command::CatchUp { step, yes }) => {
            journey::catch_up(&root, catalog::find(&step)?, yes)?
        }
        Some(Command::Demo { step, solution }) => {
            return demo::demo(&root, catalog::find(&step)?, solution, style)
        }
        Some(Command::Steps) => list_steps(),
        Some(Command::Load(args)) => return load::load_cmd(&root, args, style),
        Some(Command::Bench(args)) => return bench::bench_cmd(&root, args),
        Some(Command::ServeEcho { addr }) => load::echo::serve(addr)?,
        Some(Command::Report {
            dirs,
            jobs,
            timeout,
            csv,
            no_sandbox,
        }) => {
            // A checkout is code nobody has read: grading it runs it as the teacher. Without a
            // sandbox to run it in, that is done only when the teacher says so.
            if !no_sandbox {
                bail!(
                    "report would run every checkout's code (build scripts, servers) as you, with your files and network, and it has no sandbox to run it in: grade in a CI runner or a throwaway machine, or pass --no-sandbox to accept the risk (book/src/teachers.md, \"What grading runs on your machine\")"
                );
            }
            // A folder that is not there is a typo, or a shell pattern that matched nothing and
            // came through as written (`grading/*`): say so before grading anything.
            if let Some(missing) = dirs.iter().find(|d| !d.is_dir()) {
                bail!(
                    "{} is not a folder: name the learners' checkouts (one clone of the kit each)",
                    missing.display()
                );
            }
            let rows = report::report(&dirs, jobs, std::time::Duration::from_secs(timeout), style);
            print!("{}", report::markdown(&rows));
            if let Some(path) = csv {
                report::write(&path, &report::csv(&rows))?;
            }
            // A script can tell a class where some checkout could not be graded at all.
            if rows.iter().any(|r| r.passed.is_none()) {
                return Ok(1);
            }
        }
        Some(Command::Doctor) => return doctor::doctor(&root, style),
        Some(Command::Replay {
            file,
            solution,
            path,
            bin,
        }) => {
            let source = Source::from_flags(bin, path, solution);
            return replay::replay(&root, &file, source, style);
        }
        Some(Command::Verify(args)) => return verify_cmd(&root, args, style),
    }
    Ok(0)
}

fn verify_cmd(root: &std::path::Path, args: VerifyArgs, style: Style) -> Result<u8> {
    let steps = if args.all {
        catalog::steps().iter().collect()
    } else {
        verify::selection(step_or_current(root, &args.step)?, args.previous)
    };
    let source = Source::from_flags(args.bin, args.path, args.solution);
    let req = verify::Request {
        steps,
        source: source.clone(),
        only: args.checks,
        machine: args.format != Format::Human,
        production: args.production,
        memory_limit_mib: args.memory_limit_mb,
        style,
        fail_fast: args.fail_fast,
    };
    let reports = verify::run(root, &req)?;
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&output::json::to_json(&reports))?
        );
    } else if args.format == Format::Junit {
        println!("{}", output::junit::to_junit(&reports));
    } else {
        if reports.len() > 1 {
            let passed = reports.iter().filter(|r| r.status() == "pass").count();
            println!("{passed} of {} steps passed", reports.len());
        }
        // A learner who just passed their current step is told where to go next.
        if matches!(source, Source::Exercise) && reports.iter().all(|r| r.status() == "pass") {
            let next = Progress::load(root).current();
            let last = reports.last().map(|r| r.step.number).unwrap_or(0);
            if next.number > last {
                println!(
                    "{}",
                    style.green(&format!(
                        "✔ On to {} · {}: read book/src/{}.md, then run `{} verify`.",
                        next.label(),
                        next.title,
                        next.slug,
                        invocation()
                    ))
                );
            }
        }
    }
    Ok(verify::exit_code(&reports))
}

fn list_steps() {
    for step in catalog::steps() {
        println!("{} · {} ({})", step.label(), step.title, step.slug);
        println!("    lesson: {}", step.lesson);
        println!("    checks: {}", step.checks.join(", "));
        for hint in &step.hints {
            println!("    hint: {hint}");
        }
    }
}
