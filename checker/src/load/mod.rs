//! `checker load`: real traffic against a step's server (built in release mode and started by
//! the checker), the built-in echo server, or any server at an address; a live progress bar,
//! then a report: counts, rate, latency percentiles, and from step 09 on the server's own
//! counters checked against what the clients saw.
//!
//! - `requests`: the requests, rendered once before the run; `scan`: reading replies by a few
//!   bytes; `engine`: the connections, open or closed loop, on per-thread runtimes;
//! - `stats`: tallies and latency histograms; `machine`: CPU model, pinning, memory;
//! - `echo`: the echo ceiling server.

pub mod echo;
pub mod engine;
pub mod machine;
pub mod requests;
pub mod scan;
pub mod stats;

use crate::catalog::{self, EventReply, Step};
use crate::harness::transcript::Transcript;
use crate::oracle::client::Client;
use crate::oracle::queries::{metrics_of, Metrics};
use crate::output::Style;
use crate::sut::server::Server;
use crate::{build, invocation};
use anyhow::{bail, Context, Result};
use engine::{Limit, Live, Plan};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use machine::Machine;
use requests::{Mix, Wire};
use serde::Serialize;
use stats::Latency;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The step whose server to load: 5, 05, step05 or 05_backpressure. The checker builds it
    /// in release mode and starts it.
    #[arg(required_unless_present_any = ["addr", "echo"])]
    pub step: Option<String>,
    /// Load the reference server in solutions/ instead of your exercise.
    #[arg(long)]
    pub solution: bool,
    /// Load a server that is already running at this address (one you started yourself).
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["step", "solution", "echo"])]
    pub addr: Option<SocketAddr>,
    /// Load the checker's own echo server: the ceiling of a line server on this machine.
    #[arg(long, conflicts_with_all = ["step", "solution"])]
    pub echo: bool,
    /// How requests are written: json (the course's protocol), echo, or resp (Redis: INCRBY
    /// and GET). Default: what the step speaks.
    #[arg(long, value_enum, value_name = "WIRE")]
    pub wire: Option<Wire>,
    /// Connections.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = at_least_one)]
    pub clients: usize,
    /// Requests outstanding per connection (pipelining). Default: 1 in a closed loop; in an
    /// open loop, the most one connection may have outstanding (default 1024).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub in_flight: Option<usize>,
    /// Open loop: send this many requests per second in all, whatever the server does.
    /// Without it: a closed loop, each reply making room for the next request.
    #[arg(long, value_name = "RATE", value_parser = positive)]
    pub rate: Option<f64>,
    /// Seconds to send for (default 5, unless --events is given).
    #[arg(long, value_name = "SECS", conflicts_with = "events", value_parser = positive)]
    pub duration: Option<f64>,
    /// Requests to send in all, then stop.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub events: Option<u64>,
    /// Distinct users the requests are spread over.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = at_least_one)]
    pub users: usize,
    /// Percentage of requests that are balance reads (from step 06).
    #[arg(long, value_name = "PERCENT", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub reads: u8,
    /// Load threads, each with its own single-threaded runtime (default: one per CPU the load
    /// generator may use).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub threads: Option<usize>,
    /// Pin the load generator to these CPUs (as `taskset -c`: 1, 2-3, 0,2).
    #[arg(long, value_name = "CPUS")]
    pub client_cpus: Option<String>,
    /// Pin the server the checker starts to these CPUs.
    #[arg(long, value_name = "CPUS", conflicts_with = "addr")]
    pub server_cpus: Option<String>,
    /// Passed to the server: worker threads.
    #[arg(long, value_name = "N")]
    pub workers: Option<u64>,
    /// Passed to the server: capacity of its queue.
    #[arg(long, value_name = "N")]
    pub queue_capacity: Option<u64>,
    /// Passed to the server: simulated work per event, in microseconds.
    #[arg(long, value_name = "MICROS")]
    pub work_us: Option<u64>,
    /// Passed to the server: simulated work under the user's lock, in microseconds.
    #[arg(long, value_name = "MICROS")]
    pub hold_us: Option<u64>,
    /// The report as one JSON document on stdout (no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// A count that must be at least 1 (`--clients 0` is a mistake, not a request for nothing).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A rate or a duration: a finite number above zero.
fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(_) => Err("must be a number above 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// What to do about connections refused at the server's connection limit.
const AT_THE_LIMIT: &str = "use fewer --clients, or give the server a higher --max-connections";

/// How busy the load generator may be (of its CPUs) before the report warns that it, not the
/// server, may have set the pace.
const LOAD_BUSY: f64 = 0.9;

/// The server flags `checker load` passes through, and the step that introduces each: an
/// earlier step's server would refuse to start with it.
const SERVER_FLAGS: [(&str, usize); 4] = [
    ("--work-us", 4),
    ("--queue-capacity", 5),
    ("--workers", 6),
    ("--hold-us", 7),
];

/// What the load ran against.
pub enum Target {
    /// A step's server, started by the checker.
    Step {
        step: &'static Step,
        server: Server,
        dir: String,
    },
    /// The echo server, started by the checker.
    Echo(echo::EchoServer),
    /// A server someone else started.
    External(SocketAddr),
}

impl Target {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Step { server, .. } => server.addr,
            Target::Echo(e) => e.addr,
            Target::External(a) => *a,
        }
    }

    /// The server's process, where the checker started it.
    fn pid(&self) -> Option<u32> {
        match self {
            Target::Step { server, .. } => Some(server.pid().as_raw() as u32),
            Target::Echo(e) => Some(e.pid()),
            Target::External(_) => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Step { step, dir, .. } => {
                format!("{} · {}  ({dir}, release build)", step.label(), step.title)
            }
            Target::Echo(_) => "the checker's echo server (the ceiling)".into(),
            Target::External(a) => format!("the server at {a}"),
        }
    }
}

/// Builds a step's server in release mode and returns its executable.
pub fn release_binary(root: &Path, step: &Step, solution: bool) -> Result<PathBuf> {
    let rel = if solution {
        step.solution_dir()
    } else {
        crate::progress::Progress::load(root).learner_dir(step)
    };
    let dir = root.join(&rel);
    if !dir.join("Cargo.toml").is_file() {
        bail!(
            "{rel} does not exist: restore it with `{} reset {:02}`",
            invocation(),
            step.number
        );
    }
    let built = build::build_with(root, std::slice::from_ref(&dir), build::Profile::Release)
        .with_context(|| format!("building {rel}"))?;
    built
        .get(&dir)
        .ok_or_else(|| anyhow::anyhow!("{}", built.failure(&rel)))
}

/// Starts a server on CPUs of its own, if asked: the calling thread is pinned while the server
/// starts (a child inherits its parent's CPUs), then pinned back.
pub fn start_pinned<T>(cpus: Option<&[usize]>, start: impl FnOnce() -> Result<T>) -> Result<T> {
    let Some(cpus) = cpus else {
        return start();
    };
    let before = machine::current_cpus();
    machine::pin_current_thread(cpus)?;
    let started = start();
    machine::pin_current_thread(&before)?;
    started
}

/// Starts `bin` with `flags` (after `--addr 127.0.0.1:0`) as the checker's checks do.
pub fn start_server(bin: &Path, flags: &[String]) -> Result<Server> {
    let log = Transcript::default();
    Server::start(bin, flags, &log).map_err(|f| {
        // The command line and what the server printed before it gave up usually say why.
        anyhow::anyhow!(
            "the server did not start: {}{}\n{}",
            f.message,
            f.got
                .as_ref()
                .map(|g| format!(" (got {g})"))
                .unwrap_or_default(),
            log.render(12).join("\n")
        )
    })
}

/// The server's counters, or `None` if it does not answer metrics requests.
pub fn server_metrics(addr: SocketAddr) -> Option<Metrics> {
    let mut c = Client::connect(addr, "metrics".into(), Transcript::default()).ok()?;
    metrics_of(&mut c).ok()
}

/// The counters once the server is idle (`processed + dropped == received`), waiting up to
/// `patience` for the queue to drain.
pub fn idle_metrics(addr: SocketAddr, patience: Duration) -> Option<Metrics> {
    let mut c = Client::connect(addr, "metrics".into(), Transcript::default()).ok()?;
    let deadline = Instant::now() + patience;
    loop {
        let m = metrics_of(&mut c).ok()?;
        if m.processed + m.dropped == m.received || Instant::now() >= deadline {
            return Some(m);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The server's counters before and after, against what the clients saw.
#[derive(Clone, Debug, Serialize)]
pub struct CrossCheck {
    /// How much each counter went up during the run, as the server says...
    pub server: Counters,
    /// ...and as the clients saw it.
    pub clients: Counters,
    /// Sells the server refused for lack of balance (the clients cannot see these).
    pub refused: u64,
    /// Every counter that disagrees, in words. Empty when all agree.
    pub mismatches: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub received: u64,
    pub processed: u64,
    pub dropped: u64,
}

impl CrossCheck {
    /// `accepted` events must all be processed, `rejected` ones all dropped, and the server
    /// must have received exactly the two together.
    pub fn new(before: Metrics, after: Metrics, accepted: u64, rejected: u64) -> CrossCheck {
        let server = Counters {
            received: after.received.saturating_sub(before.received),
            processed: after.processed.saturating_sub(before.processed),
            dropped: after.dropped.saturating_sub(before.dropped),
        };
        let clients = Counters {
            received: accepted + rejected,
            processed: accepted,
            dropped: rejected,
        };
        let mut mismatches = Vec::new();
        for (name, s, c, what) in [
            (
                "received",
                server.received,
                clients.received,
                "events answered accepted or server_busy",
            ),
            (
                "processed",
                server.processed,
                clients.processed,
                "events answered accepted",
            ),
            (
                "dropped",
                server.dropped,
                clients.dropped,
                "events answered server_busy",
            ),
        ] {
            if s != c {
                mismatches.push(format!(
                    "the server counted {s} {name}, the clients saw {c} {what}"
                ));
            }
        }
        CrossCheck {
            server,
            clients,
            refused: after.refused.saturating_sub(before.refused),
            mismatches,
        }
    }
}

/// Everything a load run reports; `--json` prints exactly this.
#[derive(Debug, Serialize)]
pub struct Report {
    pub target: String,
    pub step: Option<usize>,
    pub wire: Wire,
    /// "closed" (as fast as replies come) or "open" (at `rate`).
    pub mode: &'static str,
    pub clients: usize,
    pub in_flight: usize,
    pub rate: Option<f64>,
    pub users: usize,
    pub reads_percent: u8,
    pub threads: usize,
    pub server_flags: Vec<String>,
    pub elapsed_s: f64,
    /// Requests written.
    pub sent: u64,
    /// Events accepted (or answered with a balance at step 04, or echoed, or INCRBY'd).
    pub accepted: u64,
    /// Events answered `server_busy`.
    pub rejected: u64,
    /// Reads answered with a balance.
    pub ok: u64,
    /// `error_replies + unanswered`: sent = accepted + rejected + ok + errors.
    pub errors: u64,
    pub error_replies: u64,
    pub unanswered: u64,
    pub broken_connections: u64,
    /// Connections turned away with `too_many_connections` (the server's connection limit).
    pub refused_connections: u64,
    /// Every reply per second; events answered (accepted or rejected) per second; accepted
    /// events per second.
    pub replies_per_s: f64,
    pub events_per_s: f64,
    pub accepted_per_s: f64,
    /// Latency of every reply, of events, and of reads, in microseconds.
    pub latency_us: Latency,
    /// CPU used during the run by the load generator and the server.
    pub cpu: CpuUse,
    pub event_latency_us: Latency,
    pub read_latency_us: Latency,
    /// From step 09 on (or any server that answers metrics requests).
    pub server_metrics: Option<CrossCheck>,
    /// True if the run stopped waiting for replies that never came.
    pub gave_up: bool,
    pub machine: Machine,
}

impl Report {
    /// What is wrong, if anything: the exit code is 1 when this is not empty.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.gave_up {
            p.push("the run gave up waiting for replies".to_string());
        }
        if self.errors > 0 {
            p.push(format!(
                "{} errors: {} error replies, {} requests never answered",
                self.errors, self.error_replies, self.unanswered
            ));
        }
        if self.broken_connections > 0 {
            p.push(format!(
                "{} connections could not be opened, or broke",
                self.broken_connections
            ));
        }
        if self.sent == 0 {
            p.push("no request was sent".to_string());
        }
        if self.refused_connections > 0 {
            p.push(format!(
                "{} of {} connections were refused (too_many_connections): the server is at its \
                 connection limit; {AT_THE_LIMIT}",
                self.refused_connections, self.clients
            ));
        }
        if let Some(x) = &self.server_metrics {
            p.extend(x.mismatches.iter().cloned());
        }
        p
    }
}

/// One run against an already started target, with a progress bar unless `quiet`.
pub fn measure(plan: &Plan, quiet: bool) -> Result<engine::Outcome> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        let (len, template) = match plan.limit {
            Limit::Requests(n) => (n, "{bar:30} {pos}/{len} requests  {msg}"),
            Limit::Time(d) => (d.as_millis() as u64, "{bar:30} {elapsed}  {msg}"),
        };
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
        bar
    };
    let mut last = (Duration::ZERO, 0u64);
    let outcome = engine::run(plan, |live: &Live, elapsed| {
        let answered = live.answered.load(Relaxed);
        match plan.limit {
            Limit::Requests(_) => bar.set_position(answered),
            Limit::Time(d) => bar.set_position(elapsed.min(d).as_millis() as u64),
        }
        // The rate over the last half second or so.
        let dt = (elapsed - last.0).as_secs_f64();
        if dt >= 0.5 {
            let rate = (answered - last.1) as f64 / dt;
            bar.set_message(format!("{} replies/s", thousands(rate as u64)));
            last = (elapsed, answered);
        }
    });
    bar.finish_and_clear();
    outcome
}

/// One run, with the CPU time it cost the load generator and the server (where its process is
/// known): whether either one was the limit.
pub fn measure_with_cpu(
    plan: &Plan,
    server_pid: Option<u32>,
    quiet: bool,
) -> Result<(engine::Outcome, CpuUse)> {
    let cpus = machine::current_cpus().len();
    let server_before = server_pid.and_then(machine::cpu_time_of);
    let (load_before, started) = (machine::cpu_time_self(), Instant::now());
    let outcome = measure(plan, quiet)?;
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    let percent = |cpu: Duration| 100.0 * cpu.as_secs_f64() / wall;
    let cpu = CpuUse {
        load_percent: percent(machine::cpu_time_self().saturating_sub(load_before)),
        load_cpus: plan.threads.min(cpus).max(1),
        server_percent: server_before.and_then(|before| {
            let after = machine::cpu_time_of(server_pid?)?;
            Some(percent(after.saturating_sub(before)))
        }),
    };
    Ok((outcome, cpu))
}

/// `checker load`.
pub fn load_cmd(root: &Path, args: LoadArgs, style: Style) -> Result<u8> {
    let step = args.step.as_deref().map(catalog::find).transpose()?;
    let wire = args.wire.unwrap_or(match (step, args.echo) {
        (_, true) => Wire::Echo,
        (Some(s), _) if s.event_reply == EventReply::Echo => Wire::Echo,
        _ => Wire::Json,
    });
    if args.reads > 0 {
        if let Some(s) = step.filter(|s| !s.at_least(6)) {
            bail!(
                "{} has no balance reads (they come at step 06): drop --reads",
                s.label()
            );
        }
    }
    let server_cpus = args
        .server_cpus
        .as_deref()
        .map(machine::parse_cpus)
        .transpose()?;
    let client_cpus = args
        .client_cpus
        .as_deref()
        .map(machine::parse_cpus)
        .transpose()?;
    let mut flags = Vec::new();
    let values = [
        args.work_us,
        args.queue_capacity,
        args.workers,
        args.hold_us,
    ];
    for ((flag, since), value) in SERVER_FLAGS.into_iter().zip(values) {
        let Some(v) = value else { continue };
        if let Some(s) = step.filter(|s| !s.at_least(since)) {
            bail!(
                "{}'s server has no {flag} (it comes at step {since:02}): drop {flag}",
                s.label()
            );
        }
        flags.extend([flag.to_string(), v.to_string()]);
    }
    if !flags.is_empty() && step.is_none() {
        bail!(
            "server flags ({}) go to a server the checker starts: name a step",
            flags.join(" ")
        );
    }

    let target = match (step, args.addr) {
        (_, Some(addr)) => Target::External(addr),
        (Some(step), None) => {
            let bin = release_binary(root, step, args.solution)?;
            let rel = if args.solution {
                step.solution_dir()
            } else {
                crate::progress::Progress::load(root).learner_dir(step)
            };
            let server = start_pinned(server_cpus.as_deref(), || start_server(&bin, &flags))?;
            Target::Step {
                step,
                server,
                dir: rel,
            }
        }
        (None, None) => Target::Echo(start_pinned(
            server_cpus.as_deref(),
            echo::EchoServer::start,
        )?),
    };
    if let Some(cpus) = &client_cpus {
        machine::pin_current_thread(cpus)?;
    }
    let addr = target.addr();
    if let Target::External(_) = target {
        // A server the checker did not start may not be there at all: say so plainly, rather
        // than report a run of twenty broken connections.
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).with_context(|| {
            format!("nothing answers at {addr}: start your server first (or name a step, and the checker starts it)")
        })?;
    }
    // The CPUs the load generator may use (after its pinning above).
    let cpus = machine::current_cpus().len();
    let threads = args.threads.unwrap_or(cpus).clamp(1, args.clients);
    let limit = match (args.events, args.duration) {
        (Some(n), _) => Limit::Requests(n),
        (None, d) => Limit::Time(
            Duration::try_from_secs_f64(d.unwrap_or(5.0)).context("--duration is too long")?,
        ),
    };
    let in_flight = args
        .in_flight
        .unwrap_or(if args.rate.is_some() { 1024 } else { 1 });
    let plan = Plan {
        addr,
        wire,
        clients: args.clients,
        in_flight,
        rate: args.rate,
        limit,
        mix: Mix {
            users: args.users,
            reads_percent: args.reads,
            ..Mix::default()
        },
        threads,
        patience: Duration::from_secs(5),
    };
    // Counters only from servers that keep them: from step 09, or any server that answers.
    let has_metrics = wire == Wire::Json && step.is_none_or(|s| s.at_least(9));
    let before = has_metrics.then(|| server_metrics(addr)).flatten();
    if !args.json {
        eprintln!("{}", style.bold(&format!("load · {}", target.describe())));
        eprintln!("  {}", describe_plan(&plan));
    }
    let (outcome, cpu) = measure_with_cpu(&plan, target.pid(), args.json)?;
    let cross = before.and_then(|b| {
        let after = idle_metrics(addr, Duration::from_secs(10))?;
        Some(CrossCheck::new(
            b,
            after,
            outcome.tally.accepted,
            outcome.tally.rejected,
        ))
    });
    let report = report(&plan, &target, flags, &outcome, cross, cpu);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report, style);
    }
    Ok(if report.problems().is_empty() { 0 } else { 1 })
}

fn describe_plan(plan: &Plan) -> String {
    let mode = match plan.rate {
        Some(r) => format!(
            "open loop at {} requests/s, at most {} in flight each",
            thousands(r as u64),
            plan.in_flight
        ),
        None => format!("{} in flight each, closed loop", plan.in_flight),
    };
    let limit = match plan.limit {
        Limit::Time(d) => format!("{:.1} s", d.as_secs_f64()),
        Limit::Requests(n) => format!("{} requests", thousands(n)),
    };
    format!(
        "{} clients, {mode}; {} users, {}% reads; {} thread(s); {limit}",
        plan.clients,
        thousands(plan.mix.users as u64),
        plan.mix.reads_percent,
        plan.threads
    )
}

/// The CPU a run used, each side in percent of one CPU (200 is two CPUs' worth).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CpuUse {
    /// The load generator: every thread of the checker during the run.
    pub load_percent: f64,
    /// How many CPUs the load generator could keep busy: its threads, or the CPUs it may run
    /// on if fewer.
    pub load_cpus: usize,
    /// The server, where the checker started it (and Linux says).
    pub server_percent: Option<f64>,
}

impl CpuUse {
    /// How busy the load generator was, 0 to 1: near 1, it may be what limited the run.
    pub fn load_busy(&self) -> f64 {
        self.load_percent / 100.0 / self.load_cpus as f64
    }
}

/// The report of a finished run.
pub fn report(
    plan: &Plan,
    target: &Target,
    server_flags: Vec<String>,
    outcome: &engine::Outcome,
    server_metrics: Option<CrossCheck>,
    cpu: CpuUse,
) -> Report {
    let t = &outcome.tally;
    let secs = outcome.elapsed.as_secs_f64().max(1e-9);
    let mut all = t.events.clone();
    let _ = all.add(&t.reads);
    Report {
        target: match target {
            Target::Step { dir, .. } => dir.clone(),
            Target::Echo(_) => "echo".into(),
            Target::External(a) => a.to_string(),
        },
        step: match target {
            Target::Step { step, .. } => Some(step.number),
            _ => None,
        },
        wire: plan.wire,
        mode: if plan.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        clients: plan.clients,
        in_flight: plan.in_flight,
        rate: plan.rate,
        users: plan.mix.users,
        reads_percent: plan.mix.reads_percent,
        threads: plan.threads,
        server_flags,
        elapsed_s: outcome.elapsed.as_secs_f64(),
        sent: t.sent,
        accepted: t.accepted,
        rejected: t.rejected,
        ok: t.ok,
        errors: t.errors(),
        error_replies: t.error_replies,
        unanswered: t.unanswered,
        broken_connections: t.broken_connections,
        refused_connections: t.refused_connections,
        replies_per_s: t.answered() as f64 / secs,
        events_per_s: (t.accepted + t.rejected) as f64 / secs,
        accepted_per_s: t.accepted as f64 / secs,
        latency_us: Latency::of(&all),
        cpu,
        event_latency_us: Latency::of(&t.events),
        read_latency_us: Latency::of(&t.reads),
        server_metrics,
        gave_up: outcome.gave_up,
        machine: Machine::this(),
    }
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_human(r: &Report, style: Style) {
    let n = |v: u64| format!("{:>12}", thousands(v));
    println!("  sent      {}", n(r.sent));
    println!("  accepted  {}", n(r.accepted));
    println!("  rejected  {}   (server_busy)", n(r.rejected));
    if r.reads_percent > 0 {
        println!("  reads ok  {}", n(r.ok));
    }
    let errors = format!(
        "  errors    {}   ({} error replies, {} unanswered, {} broken connections)",
        n(r.errors),
        r.error_replies,
        r.unanswered,
        r.broken_connections
    );
    if r.errors > 0 || r.broken_connections > 0 {
        println!("{}", style.red(&errors));
    } else {
        println!("{errors}");
    }
    if r.refused_connections > 0 {
        let refused = format!(
            "  limit     {}   connections turned away with too_many_connections: {AT_THE_LIMIT}",
            n(r.refused_connections)
        );
        println!("{}", style.red(&refused));
    }
    println!(
        "  rate      {}   replies/s over {:.2} s ({} events/s, {} accepted/s)",
        n(r.replies_per_s as u64),
        r.elapsed_s,
        thousands(r.events_per_s as u64),
        thousands(r.accepted_per_s as u64)
    );
    let server = match r.cpu.server_percent {
        Some(p) => format!(" · server {p:.0}% of one CPU"),
        None => String::new(),
    };
    println!(
        "  cpu       load generator {:.0}% of its {} CPU(s){server}",
        100.0 * r.cpu.load_busy(),
        r.cpu.load_cpus
    );
    if r.cpu.load_busy() >= LOAD_BUSY {
        println!(
            "{}",
            style.yellow(
                "            the load generator was nearly always busy: it may be what limited \
                 this run. Give it more CPUs (--client-cpus, --threads) to be sure."
            )
        );
    }
    let lat = |name: &str, l: &Latency| {
        if l.count > 0 {
            println!(
                "  {name:<9} p50 {:.0} µs · p90 {:.0} · p99 {:.0} · p99.9 {:.0} · max {:.0}",
                l.p50, l.p90, l.p99, l.p99_9, l.max
            );
        }
    };
    if r.reads_percent > 0 {
        lat("events", &r.event_latency_us);
        lat("reads", &r.read_latency_us);
    } else {
        lat("latency", &r.latency_us);
    }
    if let Some(x) = &r.server_metrics {
        let line = format!(
            "  server    received +{} · processed +{} · dropped +{} · refused +{}",
            thousands(x.server.received),
            thousands(x.server.processed),
            thousands(x.server.dropped),
            thousands(x.refused)
        );
        println!("{line}");
        if x.mismatches.is_empty() {
            println!(
                "{}",
                style.green("  ✔ the server's counters agree with what the clients saw")
            );
        } else {
            for m in &x.mismatches {
                println!("{}", style.red(&format!("  ✘ MISMATCH: {m}")));
            }
        }
    }
    if r.gave_up {
        println!("{}", style.red("  ✘ gave up: no reply came for 5 s"));
    }
    println!("  machine   {}", r.machine.describe());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(received: u64, processed: u64, dropped: u64) -> Metrics {
        Metrics {
            received,
            processed,
            dropped,
            refused: 0,
        }
    }

    #[test]
    fn counters_that_agree() {
        let x = CrossCheck::new(metrics(10, 8, 2), metrics(110, 98, 12), 90, 10);
        assert!(x.mismatches.is_empty(), "{:?}", x.mismatches);
        assert_eq!(x.server, x.clients);
    }

    #[test]
    fn every_counter_that_disagrees_is_named() {
        // One event the clients never heard about, and one accepted event never processed.
        let x = CrossCheck::new(metrics(0, 0, 0), metrics(101, 89, 10), 90, 10);
        assert_eq!(x.mismatches.len(), 2, "{:?}", x.mismatches);
        assert!(x.mismatches[0].contains("101 received"));
        assert!(x.mismatches[1].contains("89 processed"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn the_json_report_has_every_field() {
        let outcome = engine::Outcome {
            tally: stats::Tally {
                sent: 10,
                accepted: 7,
                rejected: 2,
                error_replies: 1,
                ..stats::Tally::default()
            },
            elapsed: Duration::from_secs(2),
            gave_up: false,
        };
        let plan = Plan {
            addr: ([127, 0, 0, 1], 1).into(),
            wire: Wire::Json,
            clients: 1,
            in_flight: 1,
            rate: None,
            limit: Limit::Requests(10),
            mix: Mix::default(),
            threads: 1,
            patience: Duration::from_secs(1),
        };
        let cpu = CpuUse {
            load_percent: 150.0,
            load_cpus: 2,
            server_percent: None,
        };
        let r = report(
            &plan,
            &Target::External(plan.addr),
            vec![],
            &outcome,
            None,
            cpu,
        );
        let v = serde_json::to_value(&r).unwrap();
        for key in [
            "sent",
            "accepted",
            "rejected",
            "ok",
            "errors",
            "replies_per_s",
            "events_per_s",
            "accepted_per_s",
            "latency_us",
            "server_metrics",
            "machine",
            "mode",
            "clients",
            "in_flight",
        ] {
            assert!(v.get(key).is_some(), "no {key} in {v}");
        }
        assert_eq!(v["errors"], 1);
        assert_eq!(v["replies_per_s"], 5.0);
        assert_eq!(v["events_per_s"], 4.5);
        assert_eq!(v["accepted_per_s"], 3.5);
        assert_eq!(v["mode"], "closed");
        assert_eq!(v["cpu"]["load_percent"], 150.0);
        assert_eq!(v["cpu"]["load_cpus"], 2);
        assert!(v["cpu"]["server_percent"].is_null());
        assert_eq!(r.cpu.load_busy(), 0.75);
        for p in ["p50", "p90", "p99", "p99_9", "max"] {
            assert!(v["latency_us"].get(p).is_some(), "no latency {p}");
        }
        assert_eq!(r.problems().len(), 1);
    }
}
