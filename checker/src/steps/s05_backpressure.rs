//! Step 05: a bounded queue between reading events and processing them. A full queue turns
//! into `server_busy` at once; nobody waits, nothing grows without bound.

use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::Outcome;
use crate::oracle::reply;
use serde_json::json;
use std::time::{Duration, Instant};

pub const CHECKS: &[Check] = &[Check {
    name: "burst_gets_server_busy",
    about: "a burst against a queue of 1 gets server_busy, every line answered promptly, server stays up",
    since: 5,run: burst_gets_server_busy,
}];

/// Sends `count` buys of 1 for `user` in one write and returns the replies, counted.
pub struct Burst {
    pub accepted: Vec<u64>,
    pub busy: Vec<u64>,
}

/// Sends one buy per amount in a single write and sorts the replies into accepted and busy.
/// Any other reply, or replies slower than `within` altogether, fail.
pub fn burst(
    c: &mut crate::oracle::client::Client,
    user: &str,
    amounts: &[u64],
    within: Duration,
) -> Outcome<Burst> {
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
            fail!(
                "{} of {} replies to a burst arrived within {} ms",
                out.accepted.len() + out.busy.len(),
                amounts.len(),
                within.as_millis()
            )
            .got(f.got.unwrap_or_default())
            .hint("Replies to a burst must not wait for the slow work: use try_send on the bounded queue and answer server_busy when it is full. send().await, or processing in the connection task, makes every client wait.")
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
        "{} accepted, {} server_busy",
        out.accepted.len(),
        out.busy.len()
    ));
    Ok(out)
}

fn burst_gets_server_busy(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&["--queue-capacity", "1", "--work-us", "50000"])?;
    let mut c = ctx.client(addr)?;
    let amounts: Vec<u64> = (1..=40).collect();
    // Processing all 40 would take 2 s; the replies must come well before that.
    let b = burst(&mut c, "burst", &amounts, Duration::from_millis(1000))?;
    if b.accepted.is_empty() {
        return Err(fail!("no event of the burst was accepted")
            .hint("The first event finds the queue empty and must be accepted."));
    }
    if b.busy.is_empty() {
        return Err(fail!("with --queue-capacity 1 and 50 ms of work per event, a burst of 40 got no server_busy")
            .hint("Honour --queue-capacity: create the channel with that bound and use try_send, which fails when the queue is full."));
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
