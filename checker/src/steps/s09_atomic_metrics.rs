//! Step 09: lock-free metrics that add up, and a health request.

use super::s05_backpressure::burst;
use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::Outcome;
use crate::harness::wait::{concurrently, poll};
use crate::oracle::queries::{balance_of, metrics_of, wait_balance, Metrics};
use crate::oracle::reply;
use serde_json::json;
use std::time::{Duration, Instant};

pub const CHECKS: &[Check] = &[
    Check {
        name: "metrics_and_health",
        about: "health answers ok; metrics start at 0 and count valid events only",
        since: 9,
        alone: false,
        run: metrics_and_health,
    },
    Check {
        name: "metrics_add_up",
        about: "received, processed, dropped and refused match what clients saw, at every moment",
        since: 9,
        alone: false,
        run: metrics_add_up,
    },
    Check {
        name: "metrics_hold_under_load",
        about: "thousands of metrics snapshots taken while 4 clients flood the server all add up, and never go backwards",
        since: 9,
        alone: false,
        run: metrics_hold_under_load,
    },
    Check {
        name: "metrics_prompt_when_queue_full",
        about: "metrics are answered promptly while the queue is full",
        since: 9,
        alone: true,
        run: metrics_prompt_when_queue_full,
    },
];

fn metrics_and_health(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    c.expect(r#"{"type":"health"}"#, &reply::ok())?;
    let fresh = metrics_of(&mut c)?;
    let zero = Metrics {
        received: 0,
        processed: 0,
        dropped: 0,
        refused: 0,
    };
    if fresh != zero {
        return Err(fail!("a fresh server's metrics are not all zero")
            .expected(format!("{zero:?}"))
            .got(format!("{fresh:?}")));
    }
    for (action, amount) in [("buy", 5), ("buy", 6), ("sell", 2)] {
        c.expect(
            &json!({"user": "mia", "action": action, "amount": amount}).to_string(),
            &reply::accepted(),
        )?;
    }
    // Neither errors nor requests are events.
    c.expect("not json", &reply::error("invalid_json"))?;
    c.expect(
        r#"{"user":"mia","action":"buy","amount":0}"#,
        &reply::error("invalid_event"),
    )?;
    balance_of(&mut c, "mia")?;
    let want = Metrics {
        received: 3,
        processed: 3,
        dropped: 0,
        refused: 0,
    };
    poll(
        Duration::from_secs(5),
        || {
            let m = metrics_of(&mut c)?;
            Ok(((m == want).then_some(()), m))
        },
        |last| {
            fail!("after 3 valid events (plus 2 bad lines and a balance request) the metrics do not settle on the expected counts")
                .expected(format!("{want:?}"))
                .got(format!("{last:?}"))
                .hint("received counts valid events only: increment it where an event parsed, not for every line.")
        },
    )
}

fn metrics_add_up(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[
        "--queue-capacity",
        "2",
        "--work-us",
        "10000",
        "--workers",
        "1",
    ])?;
    let mut c = ctx.client(addr)?;
    c.expect(
        &json!({"user": "poor", "action": "buy", "amount": 10}).to_string(),
        &reply::accepted(),
    )?;
    wait_balance(&mut c, "poor", Duration::from_secs(5), |b| b == 10, "10")?;
    // Three sells that cannot be covered, then a burst that overflows the queue.
    let mut sells_accepted = 0;
    for _ in 0..3 {
        let got = c.ask(&json!({"user": "poor", "action": "sell", "amount": 100}).to_string())?;
        if got == reply::accepted() {
            sells_accepted += 1;
        } else if got != reply::busy() {
            return Err(fail!("unexpected reply to a sell").got(got.to_string()));
        }
    }
    let amounts: Vec<u64> = (1..=30).collect();
    let b = burst(&mut c, "many", &amounts, Duration::from_secs(2))?;
    let busy_replies = b.busy.len() as u64 + (3 - sells_accepted);
    let accepted_replies = 1 + sells_accepted + b.accepted.len() as u64;
    let want = Metrics {
        received: accepted_replies + busy_replies,
        processed: accepted_replies,
        dropped: busy_replies,
        refused: sells_accepted,
    };
    let mut last = Metrics {
        received: 0,
        processed: 0,
        dropped: 0,
        refused: 0,
    };
    let settled = poll(
        Duration::from_secs(5),
        || {
            let m = metrics_of(&mut c)?;
            check_snapshot(&last, &m)?;
            last = m;
            Ok((
                (m.processed + m.dropped == m.received && m.received >= accepted_replies)
                    .then_some(m),
                m,
            ))
        },
        |m| {
            fail!("the server did not become idle: processed + dropped never reached received")
                .expected(format!("{want:?}, from what the clients saw"))
                .got(format!("{m:?}"))
                .hint(counts_hint(&want, &m))
        },
    )?;
    if settled != want {
        return Err(fail!("the metrics do not match what the clients saw ({accepted_replies} accepted, {busy_replies} server_busy, {sells_accepted} sells beyond the balance)")
            .expected(format!("{want:?}"))
            .got(format!("{settled:?}"))
            .hint(counts_hint(&want, &settled)));
    }
    Ok(())
}

fn metrics_prompt_when_queue_full(ctx: &mut Ctx) -> Outcome {
    const WORK: Duration = Duration::from_millis(300);
    let work_us = WORK.as_micros().to_string();
    let addr = ctx.serve(&[
        "--queue-capacity",
        "1",
        "--work-us",
        &work_us,
        "--workers",
        "1",
    ])?;
    let mut c = ctx.client(addr)?;
    let b = burst(&mut c, "slow", &[1, 2, 3, 4], Duration::from_secs(1))?;
    if b.busy.is_empty() {
        return Err(
            fail!("the queue of 1 did not fill up with 4 events of 300 ms each")
                .hint("Honour --queue-capacity."),
        );
    }
    let limit = WORK / 3;
    for _ in 0..3 {
        let asked = Instant::now();
        metrics_of(&mut c)?;
        let took = asked.elapsed();
        if took > limit {
            return Err(fail!("a metrics request took {} ms while the queue was full", took.as_millis())
                .expected(format!("under {} ms", limit.as_millis()))
                .got(format!("{} ms", took.as_millis()))
                .hint("Answer metrics in the connection task by loading the atomic counters: never through the queue, a worker, or a lock that workers hold."));
        }
    }
    Ok(())
}

fn metrics_hold_under_load(ctx: &mut Ctx) -> Outcome {
    const CLIENTS: usize = 4;
    const EVENTS: usize = 5_000;
    let addr = ctx.serve(&["--workers", "2", "--queue-capacity", "16"])?;
    let clients = ctx.quiet_clients(addr, CLIENTS)?;
    let mut poller = ctx.client(addr)?.quiet();
    ctx.log.note(
        "checker",
        format!("{CLIENTS} clients each send {EVENTS} events in one write (queue of 16, 2 workers) while client {} reads the metrics again and again", CLIENTS + 1),
    );
    let done = std::sync::atomic::AtomicBool::new(false);
    let replies = std::sync::Mutex::new((0u64, 0u64));
    let snapshots = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| -> Outcome<usize> {
            let mut last = Metrics {
                received: 0,
                processed: 0,
                dropped: 0,
                refused: 0,
            };
            let mut seen = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let m = metrics_of(&mut poller)?;
                seen += 1;
                check_snapshot(&last, &m)?;
                last = m;
            }
            Ok(seen)
        });
        let traffic = concurrently(clients, |k, mut c| {
            let amounts = vec![1; EVENTS];
            let b = burst(
                &mut c,
                &format!("load{k}"),
                &amounts,
                Duration::from_secs(20),
            )?;
            let mut r = replies.lock().unwrap();
            r.0 += b.accepted.len() as u64;
            r.1 += b.busy.len() as u64;
            Ok(())
        });
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let seen = watcher
            .join()
            .unwrap_or_else(|_| Err(fail!("the metrics reader panicked")));
        traffic.and(seen)
    })?;
    let (accepted, busy) = *replies.lock().unwrap();
    let mut c = ctx.client(addr)?;
    c.note(&format!(
        "{snapshots} snapshots added up; clients saw {accepted} accepted and {busy} server_busy"
    ));
    let want = Metrics {
        received: accepted + busy,
        processed: accepted,
        dropped: busy,
        refused: 0,
    };
    poll(
        Duration::from_secs(10),
        || {
            let m = metrics_of(&mut c)?;
            Ok(((m == want).then_some(()), m))
        },
        |last| {
            fail!("once the server was idle, the metrics did not match the replies the clients saw")
                .expected(format!("{want:?}"))
                .got(format!("{last:?}"))
                .hint(counts_hint(&want, &last))
        },
    )
}

/// Fails unless the snapshot `m` keeps the rule of every snapshot, and no counter went back
/// since `last`.
fn check_snapshot(last: &Metrics, m: &Metrics) -> Outcome {
    if m.processed + m.dropped > m.received {
        return Err(fail!("a snapshot counts more events processed and dropped than received")
            .got(format!("{m:?}"))
            .hint("A snapshot taken while events flow counted an event as done (processed or dropped) but not as received. Count received before the event can be queued or dropped; in the snapshot, load processed and dropped before received, with orderings that carry what was counted before them (Release increments, Acquire loads)."));
    }
    if m.processed < last.processed
        || m.received < last.received
        || m.dropped < last.dropped
        || m.refused < last.refused
    {
        return Err(fail!("a counter went backwards between two snapshots")
            .expected(format!("at least {last:?}"))
            .got(format!("{m:?}"))
            .hint("Counters only go up: each is one atomic, incremented and loaded, never recomputed from others or reset."));
    }
    Ok(())
}

/// What a difference between the final counters and the clients' replies says.
fn counts_hint(want: &Metrics, got: &Metrics) -> String {
    if got.dropped != want.dropped {
        "dropped counts every server_busy reply: count it where try_send fails.".into()
    } else if got.received != want.received {
        "received counts every valid event read, whether accepted or answered server_busy (and nothing else: not errors, not requests).".into()
    } else if got.processed != want.processed {
        "processed counts every event a worker finished, refused sells included: count it once per event taken off the queue.".into()
    } else {
        "refused counts the sells a worker did not apply for lack of balance.".into()
    }
}
