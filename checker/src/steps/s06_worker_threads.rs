//! Step 06: worker threads drain the queue in parallel; balances are read back with queries.

use super::s05_backpressure::burst;
use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::oracle::queries::{balance_of, wait_balance};
use crate::oracle::reply::{self, error};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const CHECKS: &[Check] = &[
    Check {
        name: "balance_query",
        about: "a balance request returns every processed event applied, 0 for a stranger",
        since: 6,
        run: balance_query,
    },
    Check {
        name: "workers_drain_in_parallel",
        about: "--workers 4 drains slow events markedly faster than --workers 1",
        since: 6,
        run: workers_drain_in_parallel,
    },
    Check {
        name: "only_accepted_events_count",
        about: "balances add up the accepted events only, never those answered server_busy",
        since: 6,
        run: only_accepted_events_count,
    },
];

/// How much faster 4 workers must drain than 1 (ideal: 4×).
pub const MIN_SPEEDUP: f64 = 2.0;

fn balance_query(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    for (action, amount) in [("buy", 10), ("buy", 20), ("sell", 5), ("buy", 35)] {
        c.expect(
            &json!({"user": "ann", "action": action, "amount": amount}).to_string(),
            &reply::accepted(),
        )?;
    }
    wait_balance(
        &mut c,
        "ann",
        Duration::from_secs(5),
        |b| b == 60,
        "60 (10 + 20 - 5 + 35)",
    )
    .or_hint(
        "Workers apply each event to the shared map; the balance request reads that same map.",
    )?;
    let stranger = balance_of(&mut c, "nobody-at-all")?;
    if stranger != 0 {
        return Err(fail!("a user never seen has balance {stranger}").expected("0"));
    }
    for bad in [
        r#"{"type":"balance"}"#,
        r#"{"type":"balance","user":""}"#,
        r#"{"type":"balance","user":7}"#,
    ] {
        c.expect(bad, &error("invalid_event")).or_hint(
            "A balance request needs a non-empty string user; without one it gets invalid_event.",
        )?;
    }
    Ok(())
}

/// Starts a server with `flags`, sends one buy of 1 per entry of `users` in a single write,
/// and returns how long it took until every balance shows them all.
pub fn drain_time(ctx: &mut Ctx, flags: &[&str], users: &[String]) -> Outcome<Duration> {
    let i = ctx.start(flags)?;
    let addr = ctx.server(i).addr;
    let mut c = ctx.client(addr)?.quiet();
    let mut want: BTreeMap<&str, i64> = BTreeMap::new();
    let mut all = String::new();
    for user in users {
        *want.entry(user).or_default() += 1;
        all.push_str(&json!({"user": user, "action": "buy", "amount": 1}).to_string());
        all.push('\n');
    }
    c.note(&format!(
        "sends {} buys over {} users in one write",
        users.len(),
        want.len()
    ));
    let started = Instant::now();
    c.send(all.as_bytes())?;
    for _ in users {
        let got = c.recv_json()?;
        reply::compare(b"(one of the buys)", &reply::accepted(), &got)?;
    }
    let mut queries = String::new();
    for user in want.keys() {
        queries.push_str(&json!({"type": "balance", "user": user}).to_string());
        queries.push('\n');
    }
    let deadline = started + Duration::from_secs(20);
    loop {
        c.send(queries.as_bytes())?;
        let mut done = true;
        for (user, expected) in &want {
            let got = c.recv_json()?;
            let balance = got.get("balance").and_then(|b| b.as_i64());
            match balance {
                Some(b) if b == *expected => {}
                Some(b) if b < *expected => done = false,
                _ => {
                    return Err(fail!("the balance of {user:?} is wrong while draining")
                        .expected(format!("at most {expected}"))
                        .got(got.to_string()))
                }
            }
        }
        if done {
            let took = started.elapsed();
            c.note(&format!(
                "drained in {} ms with {}",
                took.as_millis(),
                flags.join(" ")
            ));
            ctx.stop(i);
            return Ok(took);
        }
        if Instant::now() > deadline {
            return Err(fail!(
                "the queue did not drain within 20 s with {}",
                flags.join(" ")
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Compares draining with 1 and 4 workers; fails unless 4 are at least [`MIN_SPEEDUP`]× faster.
pub fn require_speedup(ctx: &mut Ctx, extra: &[&str], users: &[String], hint: &str) -> Outcome {
    let with = |n: &'static str| [&["--workers", n][..], extra].concat();
    let one = drain_time(ctx, &with("1"), users)?;
    let four = drain_time(ctx, &with("4"), users)?;
    let speedup = one.as_secs_f64() / four.as_secs_f64().max(1e-6);
    if speedup < MIN_SPEEDUP {
        return Err(fail!(
            "4 workers drained {} events in {} ms, 1 worker in {} ms: only {speedup:.1}× faster",
            users.len(),
            four.as_millis(),
            one.as_millis()
        )
        .expected(format!("at least {MIN_SPEEDUP}× faster (ideally 4×)"))
        .got(format!("{speedup:.1}×"))
        .hint(hint));
    }
    Ok(())
}

fn workers_drain_in_parallel(ctx: &mut Ctx) -> Outcome {
    let users: Vec<String> = (0..40).map(|i| format!("user{}", i % 8)).collect();
    require_speedup(
        ctx,
        &["--work-us", "10000"],
        &users,
        "The workers take turns instead of working together. Start --workers threads, each looping on the shared receiver, and do the --work-us sleep outside any lock.",
    )
}

fn only_accepted_events_count(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[
        "--queue-capacity",
        "2",
        "--work-us",
        "20000",
        "--workers",
        "1",
    ])?;
    let mut c = ctx.client(addr)?;
    let amounts: Vec<u64> = (0..30).map(|i| 1u64 << i).collect();
    let b = burst(&mut c, "counted", &amounts, Duration::from_secs(2))?;
    if b.busy.is_empty() {
        return Err(fail!(
            "with --queue-capacity 2 and 20 ms of work per event, a burst of 30 got no server_busy"
        )
        .hint("Create the queue with --queue-capacity as its bound, and use try_send."));
    }
    // Each amount is a distinct power of two, so the balance tells exactly which events counted.
    let want: i64 = b.accepted.iter().sum::<u64>() as i64;
    let got = wait_balance(
        &mut c,
        "counted",
        Duration::from_secs(5),
        |bal| bal >= want,
        &format!("{want} (the accepted events)"),
    )?;
    if got != want {
        let extra = (got - want) as u64;
        let counted_busy = b.busy.iter().filter(|&&a| extra & a != 0).count();
        return Err(
            fail!("the balance includes events that were answered server_busy")
                .expected(format!(
                    "{want}: the sum of the {} accepted events",
                    b.accepted.len()
                ))
                .got(format!("{got}: {counted_busy} rejected events counted too"))
                .hint(
                    "An event answered server_busy is dropped: it must never touch the balances.",
                ),
        );
    }
    Ok(())
}
