//! Checks as data, the context a check runs in, and the runner that gives every check a
//! fresh server, a watchdog and a diagnosis.

use crate::catalog::Step;
use crate::client::Client;
use crate::fail;
use crate::failure::{Failure, Outcome};
use crate::reply;
use crate::server::{self, describe_exit, Server};
use crate::transcript::Transcript;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// One acceptance check: a name (used in `steps.toml` and on the command line), what it
/// verifies in one line, and the function that does it.
pub struct Check {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&mut Ctx) -> Outcome,
}

/// A check may not run longer than this; past it, its servers are killed and it fails.
const CHECK_LIMIT: Duration = Duration::from_secs(60);

/// The binary being graded.
#[derive(Clone, Debug)]
pub struct Target {
    pub bin: PathBuf,
    /// A server using more memory than this (resident, in KiB) is stopped and the check fails.
    pub memory_limit_kib: u64,
    /// Where a failed check writes its replay file, if anywhere.
    pub replays: Option<PathBuf>,
}

/// The default memory limit of a server under test: 2 GiB.
pub const DEFAULT_MEMORY_LIMIT_MIB: u64 = 2048;

impl Target {
    pub fn new(bin: PathBuf) -> Target {
        Target {
            bin,
            memory_limit_kib: DEFAULT_MEMORY_LIMIT_MIB * 1024,
            replays: None,
        }
    }
}

/// What a check can use: the step it grades, servers started on demand, named clients.
pub struct Ctx {
    pub step: &'static Step,
    target: Target,
    pub log: Transcript,
    servers: Vec<Server>,
    clients: usize,
    /// The open-file limit of the servers started from now on (none: the checker's own).
    pub open_files: Option<u64>,
}

impl Ctx {
    pub fn new(step: &'static Step, target: Target) -> Ctx {
        Ctx {
            step,
            target,
            log: Transcript::default(),
            servers: Vec::new(),
            clients: 0,
            open_files: None,
        }
    }

    /// Starts a fresh server with the given flags; returns its index for [`Ctx::server`].
    pub fn start(&mut self, flags: &[&str]) -> Outcome<usize> {
        let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        self.log.record(crate::transcript::Action::Start {
            flags: flags.clone(),
        });
        let server = Server::start_numbered(
            &self.target.bin,
            &flags,
            &self.log,
            self.servers.len(),
            self.target.memory_limit_kib,
            self.open_files,
        )?;
        self.servers.push(server);
        Ok(self.servers.len() - 1)
    }

    /// Starts a fresh server and returns its address.
    pub fn serve(&mut self, flags: &[&str]) -> Outcome<SocketAddr> {
        let i = self.start(flags)?;
        Ok(self.servers[i].addr)
    }

    pub fn server(&mut self, i: usize) -> &mut Server {
        &mut self.servers[i]
    }

    /// Stops a server early (to start another one beside it without sharing the CPU).
    pub fn stop(&mut self, i: usize) {
        // Stopped on purpose: its exit is not the server's doing.
        self.servers[i].signalled = true;
        self.servers[i].kill();
    }

    /// `n` new connections that log their failures but not every line (for bulk traffic).
    pub fn quiet_clients(&mut self, addr: SocketAddr, n: usize) -> Outcome<Vec<Client>> {
        (0..n)
            .map(|_| self.client(addr).map(Client::quiet))
            .collect()
    }

    /// A new connection, named `client N` in the transcript.
    pub fn client(&mut self, addr: SocketAddr) -> Outcome<Client> {
        self.clients += 1;
        let server = self
            .servers
            .iter()
            .position(|s| s.addr == addr)
            .unwrap_or(0);
        Client::connect_to(
            addr,
            format!("client {}", self.clients),
            self.log.clone(),
            server,
        )
    }

    /// Adds what the servers reveal to a failure: an exit or crash, or a `todo!()` hit.
    pub fn diagnose(&mut self, mut f: Failure) -> Failure {
        // A panic message reaches the checker through a pipe, a moment after the panic closed
        // the connection that made the check fail: give it a moment to arrive.
        let todo = poll(
            TODO_GRACE,
            || Ok((self.servers.iter().find_map(Server::todo_location), ())),
            |_| Failure::default(),
        );
        if let Ok(at) = todo {
            let step = self.step;
            return fail!(
                "{} is not implemented yet: replace the todo!() at {at}",
                step.label()
            )
            .hint(format!(
                "Read the // TODO: comment there, and book/src/{}.md.",
                step.slug
            ));
        }
        if let Some(server) = self.servers.iter().find(|s| s.memory_exceeded()) {
            let limit = self.target.memory_limit_kib / 1024;
            return fail!("your server used more than {limit} MiB of memory and was stopped ({} MiB at its peak)", server.peak_rss_kib() / 1024)
                .hint("Something grows without bound: a line buffer with no limit, a queue with no capacity, replies piling up for a client that does not read. Every buffer needs a cap.");
        }
        for server in &mut self.servers {
            // A server the check signalled is expected to exit; any other exit is a crash.
            if let (false, Some(status)) = (server.signalled, server.exited()) {
                f.message = format!(
                    "{} (your server {} during the check)",
                    f.message,
                    describe_exit(status)
                );
                f = f.hint("The server stopped: its last words are in the [your_server] lines above. A bad request or a lost client must never bring the whole server down.");
            }
        }
        f
    }
}

/// How long a failed check waits for a `todo!()` panic message to arrive from the server.
const TODO_GRACE: Duration = Duration::from_millis(300);

/// The result of one check.
pub struct CheckResult {
    /// A production scenario: reported, but not needed to pass the step.
    pub bonus: bool,
    /// The replay file written for a failure.
    pub replay: Option<PathBuf>,
    pub name: &'static str,
    pub about: &'static str,
    pub failure: Option<Failure>,
    pub transcript: Vec<String>,
    pub duration: Duration,
}

/// What a failed check did, byte for byte, written where `checker replay` can read it.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ReplayFile {
    pub version: u32,
    pub step: String,
    pub check: String,
    /// True when the traffic was too large to record whole: the replay stops short.
    pub truncated: bool,
    pub actions: Vec<crate::transcript::Action>,
}

fn write_replay(ctx: &Ctx, check: &Check) -> Option<PathBuf> {
    let dir = ctx.target.replays.as_ref()?;
    let (actions, truncated) = ctx.log.actions();
    let file = ReplayFile {
        version: 1,
        step: ctx.step.slug.clone(),
        check: check.name.to_string(),
        truncated,
        actions,
    };
    std::fs::create_dir_all(dir).ok()?;
    let path = dir.join(format!("{}-{}.json", ctx.step.slug, check.name));
    std::fs::write(&path, serde_json::to_vec(&file).ok()?).ok()?;
    Some(path)
}

/// Check threads are named with this prefix, so that the panic hook can stay quiet for them:
/// a panic inside a check is caught and reported as part of the check's result.
pub const CHECK_THREAD: &str = "check:";

/// Transcript lines shown with a failure.
const TRANSCRIPT_LINES: usize = 40;

/// Runs one check on its own thread with its own servers. A check that outlives
/// [`CHECK_LIMIT`] fails; killing its servers then unblocks whatever it waits on.
pub fn run_one(step: &'static Step, target: &Target, check: &'static Check) -> CheckResult {
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let target = target.clone();
    let handle = thread::Builder::new().name(format!("{CHECK_THREAD}{}", check.name)).spawn(move || {
        let mut ctx = Ctx::new(step, target);
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (check.run)(&mut ctx)));
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(f)) => Some(ctx.diagnose(f)),
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Some(fail!("the checker itself failed in this check: {text}").hint("This is a bug in the checker, not in your server: please report it with this output."))
            }
        };
        let transcript = ctx.log.render(TRANSCRIPT_LINES);
        let replay = failure.as_ref().and_then(|_| write_replay(&ctx, check));
        drop(ctx); // kills this check's servers
        let _ = tx.send((failure, transcript, replay));
    });
    let Ok(handle) = handle else {
        let failure = fail!("the checker could not start a thread for this check");
        return CheckResult {
            bonus: false,
            replay: None,
            name: check.name,
            about: check.about,
            failure: Some(failure),
            transcript: Vec::new(),
            duration: started.elapsed(),
        };
    };
    let (failure, transcript, replay) = match rx.recv_timeout(CHECK_LIMIT) {
        Ok(result) => result,
        Err(_) => {
            server::kill_all_live();
            let _ = rx.recv_timeout(Duration::from_secs(10));
            (
                Some(fail!("the check did not finish within {} s", CHECK_LIMIT.as_secs())
                    .hint("The server stopped answering altogether. Look for a deadlock: a lock held while waiting for the queue, or a blocked runtime.")),
                Vec::new(),
                None,
            )
        }
    };
    let _ = handle.join();
    CheckResult {
        bonus: false,
        replay,
        name: check.name,
        about: check.about,
        failure,
        transcript,
        duration: started.elapsed(),
    }
}

// ---------------------------------------------------------------------------------------
// Small steps that many checks share.
// ---------------------------------------------------------------------------------------

/// Runs `work(i, client)` for every client at the same time, a thread each; the first failure
/// is the outcome.
pub fn concurrently(
    clients: Vec<Client>,
    work: impl Fn(usize, Client) -> Outcome + Sync,
) -> Outcome {
    thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(i, c)| scope.spawn(move || work(i, c)))
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(fail!("a client thread panicked")))
        })
    })
}

/// Polls `probe` every few milliseconds until it returns `Some`, or fails after `timeout`
/// with `on_timeout`'s failure (given the last value seen).
pub fn poll<T, S>(
    timeout: Duration,
    mut probe: impl FnMut() -> Outcome<(Option<T>, S)>,
    on_timeout: impl FnOnce(S) -> Failure,
) -> Outcome<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let (done, seen) = probe()?;
        if let Some(v) = done {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(on_timeout(seen));
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Reads a user's balance with a balance request.
pub fn balance_of(c: &mut Client, user: &str) -> Outcome<i64> {
    let line = serde_json::json!({"type": "balance", "user": user}).to_string();
    let got = c.ask(&line)?;
    match (
        got.get("status").and_then(Value::as_str),
        got.get("balance").and_then(Value::as_i64),
    ) {
        (Some("ok"), Some(b)) => Ok(b),
        _ => Err(fail!("a balance request got an unexpected reply")
            .expected(reply::balance(0).to_string().replace('0', "B"))
            .got(got.to_string())
            .hint(reply::diagnose(&reply::balance(0), &got))),
    }
}

/// Polls a balance until `done` says it has reached its final value.
pub fn wait_balance(
    c: &mut Client,
    user: &str,
    timeout: Duration,
    done: impl Fn(i64) -> bool,
    explain: &str,
) -> Outcome<i64> {
    c.note(&format!("polling the balance of {user:?} until {explain}"));
    poll(
        timeout,
        || {
            let b = balance_of(c, user)?;
            Ok((done(b).then_some(b), b))
        },
        |last| {
            fail!(
                "the balance of {user:?} did not reach its expected value within {} s",
                timeout.as_secs()
            )
            .expected(explain.to_string())
            .got(format!("{last}"))
        },
    )
}

/// The server's counters, from a metrics request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    pub received: u64,
    pub processed: u64,
    pub dropped: u64,
    pub refused: u64,
}

impl Metrics {
    pub fn from_json(v: &Value) -> Outcome<Metrics> {
        let field = |k: &str| {
            v.get(k).and_then(Value::as_u64).ok_or_else(|| {
                fail!("the metrics lack the unsigned integer field {k:?}")
                    .expected("{\"status\":\"ok\",\"received\":R,\"processed\":P,\"dropped\":D,\"refused\":F}")
                    .got(v.to_string())
                    .hint("Metrics are one JSON object with at least received, processed, dropped and refused, each a JSON number.")
            })
        };
        Ok(Metrics {
            received: field("received")?,
            processed: field("processed")?,
            dropped: field("dropped")?,
            refused: field("refused")?,
        })
    }
}

/// Asks for the metrics.
pub fn metrics_of(c: &mut Client) -> Outcome<Metrics> {
    let got = c.ask(r#"{"type":"metrics"}"#)?;
    if got.get("status").and_then(Value::as_str) != Some("ok") {
        return Err(fail!("a metrics request did not get status ok")
            .got(got.to_string())
            .hint("{\"type\":\"metrics\"} is answered {\"status\":\"ok\",...} from step 09 on."));
    }
    Metrics::from_json(&got)
}
