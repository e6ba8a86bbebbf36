//! Step 09: lock-free metrics that add up, and a health request.

use super::s05_backpressure::burst;
use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::Outcome;
use crate::harness::wait::poll;
use crate::oracle::queries::{balance_of, metrics_of, wait_balance, Metrics};
use crate::oracle::reply;
use serde_json::json;
use std::time::{Duration, Instant};

pub const CHECKS: &[Check] = &[
    Check {
        name: "metrics_and_health",
        about: "health answers ok; metrics start at 0 and count valid events only",
        since: 9,
        run: metrics_and_health,
    },
    Check {
        name: "metrics_add_up",
        about: "received, processed, dropped and refused match what clients saw, at every moment",
        since: 9,
        run: metrics_add_up,
    },
    Check {
        name: "metrics_prompt_when_queue_full",
        about: "metrics are answered promptly while the queue is full",
        since: 9,
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
            if m.processed + m.dropped > m.received {
                return Err(fail!("processed + dropped exceeds received in one snapshot")
                    .got(format!("{m:?}"))
                    .hint("Count received before try_send; when building the reply, load processed and dropped before received (Acquire loads, Release increments)."));
            }
            if m.processed < last.processed
                || m.received < last.received
                || m.dropped < last.dropped
            {
                return Err(fail!("a counter went backwards")
                    .expected(format!("at least {last:?}"))
                    .got(format!("{m:?}")));
            }
            last = m;
            Ok((
                (m.processed + m.dropped == m.received && m.received >= accepted_replies)
                    .then_some(m),
                m,
            ))
        },
        |m| {
            fail!("the server did not become idle: processed + dropped never reached received")
                .got(format!("{m:?}"))
                .hint("processed counts every event a worker finished, refused ones included.")
        },
    )?;
    let want = Metrics {
        received: accepted_replies + busy_replies,
        processed: accepted_replies,
        dropped: busy_replies,
        refused: sells_accepted,
    };
    if settled != want {
        let hint = if settled.dropped != want.dropped {
            "dropped must count every server_busy reply: increment it where try_send fails."
        } else if settled.refused != want.refused {
            "refused counts the sells a worker did not apply for lack of balance."
        } else {
            "received counts every valid event read, whether accepted or answered server_busy."
        };
        return Err(fail!("the metrics do not match what the clients saw ({accepted_replies} accepted, {busy_replies} server_busy, {sells_accepted} sells beyond the balance)")
            .expected(format!("{want:?}"))
            .got(format!("{settled:?}"))
            .hint(hint));
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
