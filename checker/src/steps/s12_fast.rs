//! Step 12 (bonus): fast. The server's speed, measured against step 10's reference on the same
//! machine, in the same run, with the same load: a slow machine fails nobody who is fast
//! relative to it.

use crate::catalog;
use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{Failure, Outcome};
use crate::load::engine::{Limit, Plan};
use crate::load::machine;
use crate::load::requests::{Mix, Wire};
use crate::load::{measure_with_cpu, start_pinned, start_server, CpuUse};
use crate::sut::build::{self, Profile};
use crate::sut::process::{reap, spawn_in_own_group};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const CHECKS: &[Check] = &[Check {
    name: "fast_enough",
    about: "release builds at 50 connections × 16 in flight: at least 2× the accepted events per second of step 10's reference, measured back to back",
    since: 12,
    alone: true,
    run: fast_enough,
}];

/// How much faster than step 10's reference the server must be. Step 12's reference is about
/// 3.3× on the machines the kit is tested on, step 10's 1×: 2× is far from both (see
/// book/src/12_fast.md for the measurements).
pub const MULTIPLE: f64 = 2.0;

/// Rounds, each loading the server and the reference once, back to back.
const ROUNDS: usize = 2;

/// How long each load lasts.
const RUN: Duration = Duration::from_millis(500);

/// One measured load: accepted events per second, and where the CPU went.
struct Rate {
    per_second: f64,
    cpu: CpuUse,
    /// Where the server hit a `todo!()` during the load, if it did.
    todo: Option<String>,
}

fn fast_enough(ctx: &mut Ctx) -> Outcome {
    let (ours, theirs) = builds(ctx)?;
    let loader = Loader::find()?;
    let (server_cpu, client_cpus) = machine::server_and_client_cpus();
    ctx.log.note(
        "checker",
        format!(
            "{ROUNDS} rounds, each loading your server and step 10's reference for {} s: 50 connections, 16 events in flight each, release builds{}",
            RUN.as_secs_f32(),
            match (&server_cpu, &client_cpus) {
                (Some(s), Some(c)) => format!(", server on CPU {s:?}, load generator on CPUs {c:?}"),
                _ => String::new(),
            }
        ),
    );
    let before = machine::current_cpus();
    if let Some(c) = &client_cpus {
        machine::pin_current_thread(c).map_err(|e| fail!("pinning the load generator: {e:#}"))?;
    }
    let mut rounds = Vec::new();
    let measured = (|| -> Outcome {
        for round in 1..=ROUNDS {
            let mine = rate(&ours, server_cpu.as_deref(), &loader)?;
            if let Some(at) = mine.todo.clone() {
                return Err(Failure::unfinished(ctx.step, at));
            }
            let base = rate(&theirs, server_cpu.as_deref(), &loader)?;
            ctx.log.note(
                "checker",
                format!(
                    "round {round}: yours {:.0} events/s, step 10's reference {:.0} events/s: ×{:.2}",
                    mine.per_second,
                    base.per_second,
                    mine.per_second / base.per_second.max(1.0)
                ),
            );
            rounds.push((mine, base));
        }
        Ok(())
    })();
    let _ = machine::pin_current_thread(&before);
    measured?;
    // The best round of each: noise on a shared machine only ever slows a run down.
    let best = |pick: fn(&(Rate, Rate)) -> &Rate| {
        rounds
            .iter()
            .map(pick)
            .max_by(|a, b| a.per_second.total_cmp(&b.per_second))
            .expect("at least one round")
    };
    let (mine, base) = (best(|r| &r.0), best(|r| &r.1));
    let ratio = mine.per_second / base.per_second.max(1.0);
    if ratio >= MULTIPLE {
        return Ok(());
    }
    let share = |c: &CpuUse| {
        format!(
            "the load generator {:.0} % busy, the server {}",
            c.load_busy() * 100.0,
            c.server_percent
                .map_or("?".into(), |p| format!("{p:.0} % of a CPU"))
        )
    };
    let hint = if mine.cpu.load_busy() > 0.9 {
        "The load generator itself was nearly always busy while loading your server, so it may have set the pace: run `checker load 12` with more CPUs for it (--client-cpus) to see your server's own limit.".to_string()
    } else {
        "Your server used its CPU and still did fewer events than it must: profile it (`checker load 12` beside `perf record -g`, or `valgrind --tool=callgrind` on a short run) and make the biggest cost smaller first. book/src/12_fast.md shows where step 10's time goes: a system call per reply, an allocation per field, a lock per event.".to_string()
    };
    Err(fail!(
        "your server did {:.0} accepted events per second, step 10's reference {:.0}: ×{ratio:.2}",
        mine.per_second,
        base.per_second
    )
    .expected(format!("at least ×{MULTIPLE} step 10's reference"))
    .got(format!(
        "×{ratio:.2}: while loading yours, {}; while loading the reference, {}",
        share(&mine.cpu),
        share(&base.cpu)
    ))
    .hint(hint))
}

/// The graded server and step 10's reference, both built for speed (release).
fn builds(ctx: &mut Ctx) -> Outcome<(PathBuf, PathBuf)> {
    let root = match ctx.source() {
        Some(source) => source.root.clone(),
        None => build::workspace_root().map_err(|e| fail!("{e:#}"))?,
    };
    let baseline = catalog::find("10").map_err(|e| fail!("{e:#}"))?;
    // Step 10's reference of the checkout graded, or else of the kit this checker comes from.
    let kit = own_kit();
    let reference = [&root, &kit]
        .into_iter()
        .map(|r| (r.clone(), r.join(baseline.solution_dir())))
        .find(|(_, dir)| dir.join("Cargo.toml").is_file())
        .ok_or_else(|| fail!("step 10's reference (solutions/{}) is in neither {} nor {}: it is the measure of this check", baseline.slug, root.display(), kit.display()))?;
    let theirs = release(&reference.0, &reference.1)?;
    let ours = match ctx.source() {
        Some(source) => release(&root, &source.dir.clone())?,
        // A server given as an executable is measured as it is: build it in release mode.
        None => ctx.target.bin.clone(),
    };
    Ok((ours, theirs))
}

/// Builds the crate in `dir` in release mode.
fn release(root: &Path, dir: &Path) -> Outcome<PathBuf> {
    let why = format!(
        "{} in release mode",
        dir.strip_prefix(root).unwrap_or(dir).display()
    );
    let built = build::build_quietly(root, &[dir.to_path_buf()], Profile::Release, &why)
        .map_err(|e| fail!("building {} in release mode: {e:#}", dir.display()))?;
    built
        .get(dir)
        .ok_or_else(|| fail!("{}", built.failure(&dir.display().to_string())))
}

/// The load generator: this checker when it is an optimised build, or else an optimised build
/// of it, run as a child (`checker load --addr`), so that an unoptimised load generator (what
/// `cargo run -p checker` gives) does not set the pace.
enum Loader {
    InProcess,
    Child(PathBuf),
}

impl Loader {
    fn find() -> Outcome<Loader> {
        let kit = own_kit();
        let dir = kit.join("checker");
        if !cfg!(debug_assertions) || !dir.join("Cargo.toml").is_file() {
            return Ok(Loader::InProcess);
        }
        Ok(Loader::Child(release(&kit, &dir)?))
    }
}

/// The kit this checker was built from.
fn own_kit() -> PathBuf {
    let checker = Path::new(env!("CARGO_MANIFEST_DIR"));
    checker.parent().unwrap_or(checker).to_path_buf()
}

/// Loads the server `bin` for [`RUN`] at 50 connections × 16 in flight.
fn rate(bin: &Path, server_cpu: Option<&[usize]>, loader: &Loader) -> Outcome<Rate> {
    // A queue deep enough that the server answers accepted, not server_busy: every event
    // counted is an event processed.
    let flags = ["--queue-capacity".to_string(), "65536".to_string()];
    let server = start_pinned(server_cpu, || start_server(bin, &flags))
        .map_err(|e| fail!("starting {}: {e:#}", bin.display()))?;
    let pid = server.pid().as_raw() as u32;
    match loader {
        Loader::InProcess => {
            let plan = Plan {
                addr: server.addr,
                wire: Wire::Json,
                clients: 50,
                in_flight: 16,
                rate: None,
                limit: Limit::Time(RUN),
                mix: Mix::default(),
                threads: machine::current_cpus().len().max(1),
                patience: Duration::from_secs(5),
            };
            let (outcome, cpu) = measure_with_cpu(&plan, Some(pid), true)
                .map_err(|e| fail!("loading {}: {e:#}", bin.display()))?;
            let per_second =
                outcome.tally.accepted as f64 / outcome.elapsed.as_secs_f64().max(1e-9);
            Ok(Rate {
                per_second,
                cpu,
                todo: server.todo_location(),
            })
        }
        Loader::Child(checker) => {
            let server_before = machine::cpu_time_of(pid);
            let started = std::time::Instant::now();
            let mut command = std::process::Command::new(checker);
            command
                .args(["load", "--addr", &server.addr.to_string()])
                .args([
                    "--clients",
                    "50",
                    "--in-flight",
                    "16",
                    "--json",
                    "--duration",
                ])
                .arg(RUN.as_secs_f64().to_string())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null());
            // In a process group of the checker's, so that nothing outlives an interrupted run.
            let mut child = spawn_in_own_group(&mut command)
                .map_err(|e| fail!("running the load generator {}: {e}", checker.display()))?;
            let mut stdout = Vec::new();
            if let Some(mut out) = child.stdout.take() {
                let _ = std::io::Read::read_to_end(&mut out, &mut stdout);
            }
            reap(&mut child);
            let wall = started.elapsed().as_secs_f64().max(1e-9);
            let report: serde_json::Value = serde_json::from_slice(&stdout)
                .map_err(|e| fail!("the load generator's report is not JSON: {e}"))?;
            let number = |path: &[&str]| {
                path.iter()
                    .try_fold(&report, |v, k| v.get(k))
                    .and_then(serde_json::Value::as_f64)
            };
            let server_percent = server_before.and_then(|before| {
                let after = machine::cpu_time_of(pid)?;
                Some(100.0 * after.saturating_sub(before).as_secs_f64() / wall)
            });
            Ok(Rate {
                todo: server.todo_location(),
                per_second: number(&["accepted_per_s"]).unwrap_or(0.0),
                cpu: CpuUse {
                    load_percent: number(&["cpu", "load_percent"]).unwrap_or(0.0),
                    load_cpus: number(&["cpu", "load_cpus"]).unwrap_or(1.0) as usize,
                    server_percent,
                },
            })
        }
    }
}
