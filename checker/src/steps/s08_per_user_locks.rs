//! Step 08: a lock per user. Work on different users runs in parallel, and a read for one user
//! never waits for a write to another.

use super::s06_worker_threads::require_speedup;
use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::Outcome;
use crate::oracle::queries::balance_of;
use crate::oracle::reply;
use serde_json::json;
use std::thread;
use std::time::{Duration, Instant};

pub const CHECKS: &[Check] = &[
    Check {
        name: "hold_scales_across_users",
        about: "with --hold-us, 4 workers on 40 users drain markedly faster than 1",
        since: 8,
        run: hold_scales_across_users,
    },
    Check {
        name: "read_not_blocked_by_other_users",
        about: "a balance read is answered promptly while another user's hold is in progress",
        since: 8,
        run: read_not_blocked_by_other_users,
    },
];

fn hold_scales_across_users(ctx: &mut Ctx) -> Outcome {
    let users: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
    require_speedup(
        ctx,
        &["--hold-us", "10000"],
        &users,
        "Events for different users still take turns: one lock is held across the --hold-us work of every user. Give each user a lock of its own (e.g. DashMap<String, Arc<Mutex<i64>>>) so that only the same user waits.",
    )
}

fn read_not_blocked_by_other_users(ctx: &mut Ctx) -> Outcome {
    const HOLD: Duration = Duration::from_millis(400);
    let hold_us = HOLD.as_micros().to_string();
    let addr = ctx.serve(&["--hold-us", &hold_us, "--workers", "2"])?;
    let mut writer = ctx.client(addr)?;
    let buy = json!({"user": "hot", "action": "buy", "amount": 5}).to_string();
    // Two events for the same user: about 800 ms of holds on "hot", one after the other.
    for _ in 0..2 {
        writer.expect(&buy, &reply::accepted())?;
    }
    let mut reader = ctx.client(addr)?;
    reader.note("reads the balance of \"cold\" six times while \"hot\" is held");
    let limit = HOLD / 4;
    for _ in 0..6 {
        let asked = Instant::now();
        balance_of(&mut reader, "cold")?;
        let took = asked.elapsed();
        if took > limit {
            return Err(fail!("a balance read for an idle user took {} ms while another user's hold was in progress", took.as_millis())
                .expected(format!("under {} ms (the hold is {} ms)", limit.as_millis(), HOLD.as_millis()))
                .got(format!("{} ms", took.as_millis()))
                .hint("The read waits for a lock that the worker holds during another user's --hold-us: one global lock. With a lock per user, reading \"cold\" never touches the lock of \"hot\"."));
        }
        // Spreads the reads over the first holds.
        thread::sleep(Duration::from_millis(40));
    }
    Ok(())
}
