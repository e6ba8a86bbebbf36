//! Checks as data, and the context a check runs in: the step it grades, the servers it starts,
//! the clients it opens, and the diagnosis a failure gets from what the servers revealed.

use crate::catalog::Step;
use crate::fail;
use crate::harness::failure::{Failure, Outcome};
use crate::harness::transcript::Transcript;
use crate::harness::wait::poll;
use crate::oracle::client::Client;
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
    pub run: fn(&mut Ctx) -> Outcome,
}

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
    pub(crate) target: Target,
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
        self.log.record(crate::harness::transcript::Action::Start {
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
