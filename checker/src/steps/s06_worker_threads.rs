//! Step 06: worker threads drain the queue in parallel; balances are read back with queries.

use super::s05_backpressure::burst;
use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::harness::wait::concurrently;
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
        alone: false,
        run: balance_query,
    },
    Check {
        name: "workers_drain_in_parallel",
        about: "--workers 4 drains slow events markedly faster than --workers 1",
        since: 6,
        alone: true,
        run: workers_drain_in_parallel,
    },
    Check {
        name: "no_update_lost_between_workers",
        about: "4 workers applying 20 000 buys for one user at once lose none",
        since: 6,
        alone: false,
        run: no_update_lost_between_workers,
    },
    Check {
        name: "only_accepted_events_count",
        about: "balances add up the accepted events only, never those answered server_busy",
        since: 6,
        alone: false,
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

/// How one server drained a backlog.
pub struct Drain {
    /// From the first event sent to every balance showing every event.
    pub took: Duration,
    /// The server's threads while it drained, where the system says.
    pub threads: Option<u64>,
}

/// Starts a server with `flags`, sends one buy of 1 per entry of `users` in a single write,
/// and returns how long it took until every balance shows them all.
pub fn drain_time(ctx: &mut Ctx, flags: &[&str], users: &[String]) -> Outcome<Drain> {
    let i = ctx.start(flags)?;
    let addr = ctx.server(i).addr;
    let pid = ctx.server(i).pid().as_raw();
    let mut threads = None;
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
        threads = threads.max(super::s02_async_echo::threads_of(pid));
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
            return Ok(Drain { took, threads });
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

/// Compares draining with 1 and 4 workers; fails unless 4 are at least [`MIN_SPEEDUP`]× faster,
/// with a diagnosis from what was seen: no work done at all, the flag not honoured (no more
/// threads with 4 than with 1), or threads that take turns (`turns`: this check's own guess at
/// why).
pub fn require_speedup(
    ctx: &mut Ctx,
    extra: &[&str],
    users: &[String],
    each: Duration,
    turns: &str,
) -> Outcome {
    let with = |n: &'static str| [&["--workers", n][..], extra].concat();
    let one = drain_time(ctx, &with("1"), users)?;
    let four = drain_time(ctx, &with("4"), users)?;
    let speedup = one.took.as_secs_f64() / four.took.as_secs_f64().max(1e-6);
    // A sleep never ends early: 4 workers cannot drain faster than a quarter of the work (a
    // fifth leaves room for clocks), whatever the ratio of two quick drains says.
    let least = each * users.len() as u32;
    if four.took < least / 5 {
        return Err(fail!(
            "4 workers drained {} events of {} ms each in {} ms, less than the work allows",
            users.len(),
            each.as_millis(),
            four.took.as_millis()
        )
        .expected(format!("at least {} ms: a quarter of the work", (least / 4).as_millis()))
        .got(format!("{} ms", four.took.as_millis()))
        .hint("The events were done faster than their work allows: the work is not done. Each event's --work-us (and --hold-us) is a std::thread::sleep in the worker that processes it."));
    }
    if speedup >= MIN_SPEEDUP {
        return Ok(());
    }
    let f = fail!(
        "4 workers drained {} events in {} ms, 1 worker in {} ms: only {speedup:.1}× faster",
        users.len(),
        four.took.as_millis(),
        one.took.as_millis()
    )
    .expected(format!("at least {MIN_SPEEDUP}× faster (ideally 4×)"))
    .got(format!("{speedup:.1}×"));
    let hint = if one.took < least / 2 {
        format!("One worker drained {} events in {} ms, though each takes {} ms of work: the work is not done. Each event's --work-us (and --hold-us) is a std::thread::sleep in the worker that processes it.", users.len(), one.took.as_millis(), each.as_millis())
    } else if let (Some(t1), Some(t4)) = (one.threads, four.threads) {
        if t4 < t1 + 3 {
            format!("With --workers 4 the server ran {t4} threads, with --workers 1 {t1}: the flag is not honoured. Start --workers threads, each taking events from the one queue.")
        } else {
            turns.to_string()
        }
    } else {
        turns.to_string()
    };
    Err(f.hint(hint))
}

fn workers_drain_in_parallel(ctx: &mut Ctx) -> Outcome {
    let users: Vec<String> = (0..40).map(|i| format!("user{}", i % 8)).collect();
    require_speedup(
        ctx,
        &["--work-us", "10000"],
        &users,
        Duration::from_millis(10),
        "There are 4 worker threads, but they take turns instead of working together: the --work-us work is done while a lock they all need is held. The work needs no balance: do it before taking any lock.",
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

fn no_update_lost_between_workers(ctx: &mut Ctx) -> Outcome {
    const CLIENTS: usize = 4;
    const EVENTS: usize = 5_000;
    let addr = ctx.serve(&["--workers", "4", "--queue-capacity", "100000"])?;
    let clients = ctx.quiet_clients(addr, CLIENTS)?;
    ctx.log.note(
        "checker",
        format!("{CLIENTS} clients each send {EVENTS} buys of 1 for \"hot\" in one write; 4 workers apply them"),
    );
    let accepted = std::sync::atomic::AtomicI64::new(0);
    concurrently(clients, |_, mut c| {
        let amounts = vec![1; EVENTS];
        let b = burst(&mut c, "hot", &amounts, Duration::from_secs(10))?;
        accepted.fetch_add(
            b.accepted.len() as i64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    })?;
    let want = accepted.load(std::sync::atomic::Ordering::Relaxed);
    let mut c = ctx.client(addr)?;
    // The balance rises while the workers drain the queue; once it stops rising it is final.
    let mut last = balance_of(&mut c, "hot")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = balance_of(&mut c, "hot")?;
        if now == want || (now == last && now > 0) || Instant::now() > deadline {
            last = now;
            break;
        }
        last = now;
    }
    if last != want {
        return Err(fail!("{want} buys of 1 for one user were accepted, and its balance settled at {last}")
            .expected(want.to_string())
            .got(format!("{last}: {} updates lost", want - last))
            .hint("Updates were lost when workers applied events for the same user at the same time: read the balance, add, and write it back under one lock guard. A balance read under one lock and written back under another loses the updates made in between."));
    }
    Ok(())
}
