//! Step 05: a bounded queue between reading events and processing them. A full queue turns
//! into `server_busy` at once; nobody waits, nothing grows without bound.

use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{Failure, Outcome};
use crate::oracle::client::Client;
use crate::oracle::reply;
use serde_json::json;
use std::time::{Duration, Instant};

pub const CHECKS: &[Check] = &[
    Check {
        name: "burst_gets_server_busy",
        about: "2 000 events in one write against a queue of 1 are all answered within 1 s, with server_busy for most",
        since: 5,
        alone: true,
        run: burst_gets_server_busy,
    },
    Check {
        name: "busy_worker_blocks_no_connection",
        about: "while the worker is busy with 300 ms events, on a server given one CPU, other clients are answered at once",
        since: 5,
        alone: true,
        run: busy_worker_blocks_no_connection,
    },
];

/// The replies to a burst, by amount.
pub struct Burst {
    pub accepted: Vec<u64>,
    pub busy: Vec<u64>,
}

/// Sends one buy per amount in a single write and sorts the replies into accepted and busy.
/// Any other reply, or replies slower than `within` altogether, fail; the failure says at what
/// pace the replies came, which tells waiting for room from processing in the connection.
pub fn burst(c: &mut Client, user: &str, amounts: &[u64], within: Duration) -> Outcome<Burst> {
    let mut all = String::new();
    for amount in amounts {
        all.push_str(&json!({"user": user, "action": "buy", "amount": amount}).to_string());
        all.push('\n');
    }
    let started = Instant::now();
    c.send(all.as_bytes())?;
    let mut out = Burst {
        accepted: Vec::new(),
        busy: Vec::new(),
    };
    for &amount in amounts {
        let left = within.saturating_sub(started.elapsed());
        let got = c.recv_json_within(left).map_err(|f| {
            if f.observed {
                return f;
            }
            let answered = out.accepted.len() + out.busy.len();
            let pace = if answered > 0 {
                format!(
                    ": one reply every {:.1} ms",
                    started.elapsed().as_secs_f64() * 1e3 / answered as f64
                )
            } else {
                String::new()
            };
            fail!(
                "{answered} of {} replies to a burst arrived within {} ms{pace}",
                amounts.len(),
                within.as_millis()
            )
            .got(format!("{} accepted, {} server_busy so far", out.accepted.len(), out.busy.len()))
            .hint(if out.busy.is_empty() && answered > 0 {
                "The replies trickle in at the pace of the work: each event waits until it is processed (work done in the connection, or a send that waits for room in the queue). A full queue must turn into server_busy at once: try_send on a bounded queue, never a send that waits."
            } else if answered > 0 {
                "server_busy replies come, but each one only after a wait: the connection waits for room in the queue before it gives up (a send with a timeout, say). The contract says never wait: try_send, and server_busy at once when it fails."
            } else {
                "Not one reply to the burst: the connection waits on the queue or on the work. A full queue must turn into server_busy at once: try_send, never a send that waits."
            })
        })?;
        if got == reply::accepted() {
            out.accepted.push(amount);
        } else if got == reply::busy() {
            out.busy.push(amount);
        } else {
            return Err(
                fail!("a reply to a queued event must be accepted or server_busy")
                    .expected(format!("{} or {}", reply::accepted(), reply::busy()))
                    .got(got.to_string())
                    .hint(reply::diagnose(&reply::accepted(), &got)),
            );
        }
    }
    c.note(&format!(
        "{} accepted, {} server_busy, all within {} ms",
        out.accepted.len(),
        out.busy.len(),
        started.elapsed().as_millis()
    ));
    Ok(out)
}

fn burst_gets_server_busy(ctx: &mut Ctx) -> Outcome {
    const EVENTS: u64 = 2_000;
    let addr = ctx.serve(&["--queue-capacity", "1", "--work-us", "50000"])?;
    let mut c = ctx.client(addr)?.quiet();
    c.note(&format!(
        "sends {EVENTS} events in one write to a server with a queue of 1 and 50 ms of work per event"
    ));
    let amounts: Vec<u64> = (1..=EVENTS).collect();
    // Processing them all would take 100 s; waiting even half a millisecond for room before
    // each server_busy would take a second.
    let b = burst(&mut c, "burst", &amounts, Duration::from_millis(1000))?;
    if b.accepted.is_empty() {
        return Err(fail!("no event of the burst was accepted")
            .hint("The first event finds the queue empty and must be accepted."));
    }
    if b.busy.is_empty() {
        return Err(fail!("with --queue-capacity 1 and 50 ms of work per event, a burst of {EVENTS} got no server_busy")
            .got(format!("{} accepted", b.accepted.len()))
            .hint("Every event was accepted, faster than the work allows: either the queue is not bounded by --queue-capacity, or the worker does not do the --work-us work and so is never behind. Create the queue with --queue-capacity as its bound, and use try_send, which fails when it is full."));
    }
    if b.accepted.len() > 10 {
        return Err(fail!("with a queue of 1 and 50 ms of work per event, {} events of an instant burst were accepted", b.accepted.len())
            .expected("a few at most: the worker's event and the queue's one")
            .hint("The queue holds more than --queue-capacity events: create it with that bound."));
    }
    // The server is still up and answering on a new connection.
    let mut again = ctx.client(addr)?;
    let got = again.ask(&json!({"user": "after", "action": "buy", "amount": 1}).to_string())?;
    if got != reply::accepted() && got != reply::busy() {
        return Err(
            fail!("after the burst, a new client got an unexpected reply").got(got.to_string()),
        );
    }
    Ok(())
}

fn busy_worker_blocks_no_connection(ctx: &mut Ctx) -> Outcome {
    const WORK: Duration = Duration::from_millis(300);
    // One CPU: a runtime sized by the CPUs it may use has one thread, so that a worker that
    // blocks a runtime thread blocks every connection.
    ctx.one_cpu();
    let work_us = WORK.as_micros().to_string();
    let addr = ctx.serve(&["--queue-capacity", "4", "--work-us", &work_us])?;
    let mut loader = ctx.client(addr)?.quiet();
    let amounts: Vec<u64> = (1..=10).collect();
    if let Err(f) = burst(&mut loader, "slow", &amounts, Duration::from_secs(2)) {
        return Err(blocked_or(ctx, addr, f));
    }
    ctx.log.note(
        "checker",
        "the worker now has seconds of 300 ms events ahead of it",
    );
    let mut other = ctx.client(addr)?;
    for line in ["not json", r#"{"user":"other","action":"buy","amount":1}"#] {
        let asked = Instant::now();
        other.send_line(line)?;
        other
            .recv_json_within(Duration::from_millis(250))
            .map_err(|f| {
                if f.observed {
                    return f;
                }
                fail!("while the worker was busy, a reply to another client took more than 250 ms")
                    .got(format!("nothing after {} ms", asked.elapsed().as_millis()))
                    .hint("The worker's work stops the connections too: it runs on a thread the connections need (a tokio task doing a blocking sleep blocks a runtime thread). The worker is a thread of its own: std::thread::spawn, fed by the queue.")
            })?;
    }
    Ok(())
}

/// After a burst got no reply: when a new connection's line that needs no queue is not answered
/// either, nothing runs at all, and that (not the queue) is the diagnosis.
fn blocked_or(ctx: &mut Ctx, addr: std::net::SocketAddr, f: Failure) -> Failure {
    let answered = ctx.client(addr).and_then(|mut probe| {
        probe.send_line("not json")?;
        probe.recv_json_within(Duration::from_millis(500))
    });
    match answered {
        Ok(_) => f,
        Err(_) => fail!("{}; a new connection's `not json` got no reply within 500 ms either", f.message)
            .hint("Nothing was answered, not even a line that needs no queue: every thread of the async runtime is blocked. On one CPU the runtime has one thread, and blocking code in a task (a worker loop run with tokio::spawn, a std::thread::sleep in a connection task) holds it. The worker is a thread of its own (std::thread::spawn); a connection task only parses, try_sends and answers."),
    }
}
