//! Checks as data, and the context a check runs in: the step it grades, the servers it starts,
//! the clients it opens, and the diagnosis a failure gets from what the servers revealed.

use crate::catalog::Step;
use crate::fail;
use crate::harness::failure::{Failure, Outcome};
use crate::harness::transcript::Transcript;
use crate::harness::wait::poll;
use crate::oracle::client::Client;
use crate::sut::process::Limits;
use crate::sut::server::{describe_exit, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One acceptance check: a name (used in `steps.toml` and on the command line), what it
/// verifies in one line, the first step whose server it can grade, and the function that does it.
pub struct Check {
    pub name: &'static str,
    pub about: &'static str,
    /// The first step whose contract has the rule this check holds a server to (a step's suite
    /// may add it later than that, as the bonus steps do).
    pub since: usize,
    /// True for a check that measures how long something takes against a bound: it runs with
    /// no other check beside it, so that the CPUs are the server's and the checker's alone.
    /// The others run a few at a time.
    pub alone: bool,
    pub run: fn(&mut Ctx) -> Outcome,
}

/// What is being graded: the server executable, and the crate it was built from.
#[derive(Clone, Debug)]
pub struct Target {
    pub bin: PathBuf,
    /// A server using more memory than this (resident, in KiB) is stopped and the check fails.
    pub memory_limit_kib: u64,
    /// Where a failed check writes its replay file and its whole transcript, if anywhere.
    pub replays: Option<PathBuf>,
    /// The crate the server was built from, for the checks that run the crate's own tests:
    /// none for a server given as an executable (`--bin`).
    pub source: Option<Source>,
}

/// A crate to run the tests of.
#[derive(Clone, Debug)]
pub struct Source {
    /// The crate's folder.
    pub dir: PathBuf,
    /// The kit's workspace root: a crate inside it is tested as a workspace member (sharing the
    /// kit's target folder), any other in its own folder.
    pub root: PathBuf,
}

/// The default memory limit of a server under test: 2 GiB.
pub const DEFAULT_MEMORY_LIMIT_MIB: u64 = 2048;

impl Target {
    pub fn new(bin: PathBuf) -> Target {
        Target {
            bin,
            memory_limit_kib: DEFAULT_MEMORY_LIMIT_MIB * 1024,
            replays: None,
            source: None,
        }
    }
}

/// What a check can use: the step it grades, servers started on demand, named clients.
pub struct Ctx {
    pub step: &'static Step,
    pub(crate) target: Target,
    pub log: Transcript,
    servers: Vec<Server>,
    clients: usize,
    /// The limits of the servers started from now on (open files, CPUs).
    pub limits: Limits,
    /// Set by [`Ctx::skip`]: why the check did not apply.
    pub(crate) skipped: Option<String>,
    /// What the server exiting means in this check, when the check knows better than "it
    /// crashed" (it provokes a situation a server must survive).
    pub exit_means: Option<&'static str>,
}

impl Ctx {
    pub fn new(step: &'static Step, target: Target) -> Ctx {
        Ctx {
            step,
            target,
            log: Transcript::default(),
            servers: Vec::new(),
            clients: 0,
            limits: Limits::default(),
            skipped: None,
            exit_means: None,
        }
    }

    /// Ends the check as not applicable to what is graded, saying why.
    pub fn skip(&mut self, why: impl Into<String>) -> Outcome {
        self.skipped = Some(why.into());
        Ok(())
    }

    /// The crate the server came from, if it came from one.
    pub fn source(&self) -> Option<&Source> {
        self.target.source.as_ref()
    }

    /// From now on, servers start on one CPU alone (where the system lets a process choose its
    /// CPUs): a runtime sized by the CPUs it may use then has one thread, and a map sharded by
    /// them few shards, so that one blocked thread or one shared shard shows on every run.
    pub fn one_cpu(&mut self) {
        self.limits.cpu = crate::load::machine::current_cpus().first().copied();
    }

    /// Starts a fresh server with the given flags; returns its index for [`Ctx::server`].
    pub fn start(&mut self, flags: &[&str]) -> Outcome<usize> {
        let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        self.log.record(crate::harness::transcript::Action::Start {
            flags: flags.clone(),
            limits: self.limits,
        });
        let server = Server::start_numbered(
            &self.target.bin,
            &flags,
            &self.log,
            self.servers.len(),
            self.target.memory_limit_kib,
            &self.limits,
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

    /// `n` new connections that log their failures but not every line (for bulk traffic): one
    /// note says they connected.
    pub fn quiet_clients(&mut self, addr: SocketAddr, n: usize) -> Outcome<Vec<Client>> {
        let first = self.clients + 1;
        let clients = (0..n)
            .map(|_| self.open(addr, true))
            .collect::<Outcome<Vec<_>>>()?;
        if n > 0 {
            self.log.note(
                "checker",
                format!("clients {first} to {} connected to {addr}", self.clients),
            );
        }
        Ok(clients)
    }

    /// A new connection, named `client N` in the transcript.
    pub fn client(&mut self, addr: SocketAddr) -> Outcome<Client> {
        self.open(addr, false)
    }

    fn open(&mut self, addr: SocketAddr, quiet: bool) -> Outcome<Client> {
        self.clients += 1;
        let server = self
            .servers
            .iter()
            .position(|s| s.addr == addr)
            .unwrap_or(0);
        let name = format!("client {}", self.clients);
        if quiet {
            Client::connect_quiet(addr, name, self.log.clone(), server)
        } else {
            Client::connect_to(addr, name, self.log.clone(), server)
        }
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
            return Failure::unfinished(self.step, at);
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
                f = f.hint(self.exit_means.unwrap_or("The server stopped: its last words are in the [your_server] lines above. A bad request or a lost client must never bring the whole server down."));
            }
        }
        f
    }
}

/// How long a failed check waits for a `todo!()` panic message to arrive from the server.
const TODO_GRACE: Duration = Duration::from_millis(300);
