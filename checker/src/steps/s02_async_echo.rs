//! Step 02: an async echo server. Many clients at once, and none waits for another, however
//! many are idle.

use super::s01_blocking_echo::{exchange, expect_echo, hello};
use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::Outcome;
use crate::harness::wait::concurrently;
use crate::oracle::ledger::Ledger;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const CHECKS: &[Check] = &[
    Check {
        name: "echo_many_clients",
        about: "100 concurrent clients × 100 lines each, all echoed correctly",
        since: 2,
        alone: true,
        run: echo_many_clients,
    },
    Check {
        name: "idle_clients_do_not_block",
        about: "64 clients idling mid-line, on a server given one CPU, do not delay a client that talks",
        since: 2,
        alone: true,
        run: idle_clients_do_not_block,
    },
    Check {
        name: "idle_clients_cost_no_thread",
        about: "100 idle connections are served by the server's few threads, not a thread each",
        since: 2,
        alone: false,
        run: idle_clients_cost_no_thread,
    },
];

fn echo_many_clients(ctx: &mut Ctx) -> Outcome {
    const CLIENTS: usize = 100;
    let addr = ctx.serve(&[])?;
    let clients = ctx.quiet_clients(addr, CLIENTS)?;
    // When each client got its first echo, if it got one: tells "one at a time" from "slow for
    // everyone".
    let firsts = Mutex::new(Vec::new());
    let started = Instant::now();
    let outcome = concurrently(clients, |i, mut c| {
        let lines: Vec<String> = (0..100).map(|j| format!("client {i} line {j}")).collect();
        c.send(format!("{}\n", lines.join("\n")).as_bytes())?;
        for (j, line) in lines.iter().enumerate() {
            expect_echo(&mut c, line.as_bytes())?;
            if j == 0 {
                firsts.lock().unwrap().push(started.elapsed());
            }
        }
        Ok(())
    });
    outcome.map_err(|f| {
        let answered = firsts.lock().unwrap().len();
        if f.observed {
            f
        } else if answered < CLIENTS / 2 {
            f.hint(format!("Only {answered} of the {CLIENTS} clients got any echo at all: the others waited for a turn that never came in time. The server serves connections one at a time; spawn a task per connection (tokio::spawn) so that all are served at once."))
        } else {
            f.hint(format!("{answered} of the {CLIENTS} clients got echoes, but too slowly: the server is slow for everyone at once. Something blocks the runtime's threads while it serves them (a std::thread::sleep, a blocking std::io read or write, a std Mutex held while waiting) — in async code, every wait is an .await."))
        }
    })
}

fn idle_clients_do_not_block(ctx: &mut Ctx) -> Outcome {
    const IDLE: usize = 64;
    // One CPU: a runtime sized by the CPUs it may use has one thread, so that a single blocking
    // call in any task shows, instead of hiding behind the other threads.
    ctx.one_cpu();
    let addr = ctx.serve(&[])?;
    let mut ledger = Ledger::new(ctx.step);
    let mut idle = ctx.quiet_clients(addr, IDLE)?;
    for c in &mut idle {
        c.send(b"{\"user\":\"typing very slo")?;
    }
    ctx.log.note(
        "checker",
        format!("{IDLE} clients each sent half a line and stay connected, silent"),
    );
    let mut talker = ctx.client(addr)?;
    let (line, want) = hello(&mut ledger, "talker");
    let asked = Instant::now();
    talker.send_line(&line)?;
    let within = Duration::from_secs(1);
    let answered = match &want {
        None => talker.recv_raw_within(within).map(|_| ()),
        Some(_) => talker.recv_json_within(within).map(|_| ()),
    };
    if let Err(f) = answered {
        if f.observed {
            return Err(f);
        }
        // Does the reply come once the idle clients are gone? Then they held it back.
        drop(idle);
        let later = match &want {
            None => talker.recv_raw_within(Duration::from_secs(3)).map(|_| ()),
            Some(_) => talker.recv_json_within(Duration::from_secs(3)).map(|_| ()),
        };
        let hint = match later {
            Ok(()) => format!("The reply came only after the {IDLE} idle clients disconnected, {} ms after it was asked for: while they sat there, the server could serve nobody else. Waiting for a client must not take a thread: a task per connection (tokio::spawn), and every read an .await, never a blocking read.", asked.elapsed().as_millis()),
            Err(_) => format!("No reply came, even after the {IDLE} idle clients left: the server is stuck. A blocking call in a task (a std::thread::sleep, a blocking read) stops the runtime thread under it, and with one CPU there is no other thread."),
        };
        return Err(fail!(
            "a client got no reply within 1 s while {IDLE} other clients idled mid-line"
        )
        .hint(hint));
    }
    Ok(())
}

/// The number of threads of a process, from /proc (Linux).
pub fn threads_of(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

fn idle_clients_cost_no_thread(ctx: &mut Ctx) -> Outcome {
    const IDLE: usize = 100;
    /// More than a runtime, its blocking pool's few threads, and the workers of later steps.
    const MOST: u64 = 64;
    let i = ctx.start(&[])?;
    let addr = ctx.server(i).addr;
    let pid = ctx.server(i).pid().as_raw();
    let Some(before) = threads_of(pid) else {
        return ctx.skip("this system does not say how many threads a process has");
    };
    let mut ledger = Ledger::new(ctx.step);
    let mut idle = ctx.quiet_clients(addr, IDLE)?;
    for (k, c) in idle.iter_mut().enumerate() {
        // Each one is served once, so that every connection has been accepted and has begun.
        let (line, want) = hello(&mut ledger, &format!("idle{k}"));
        exchange(c, &line, &want).map_err(|f| f.guess("These clients are served once each, one after another, while the earlier ones stay connected: a server that serves one connection at a time never gets past the second."))?;
    }
    let after = threads_of(pid).unwrap_or(before);
    ctx.log.note(
        "checker",
        format!(
            "{IDLE} connections open and idle: the server has {after} threads (it had {before})"
        ),
    );
    if after > MOST {
        return Err(fail!("with {IDLE} idle connections the server runs {after} threads")
            .expected(format!("a few threads however many connections (at most {MOST})"))
            .got(format!("{after} threads"))
            .hint("A thread per connection: each waiting client holds a whole OS thread (and its stack). Serve each connection in a tokio task instead (tokio::spawn): a task that waits costs its buffers (kilobytes) and no thread."));
    }
    Ok(())
}
