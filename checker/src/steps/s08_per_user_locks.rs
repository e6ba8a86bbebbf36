//! Step 08: a lock per user. Work on different users runs in parallel, and neither a read of
//! another user nor a new user's first event waits for a user's hold.

use super::s06_worker_threads::require_speedup;
use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::Outcome;
use crate::oracle::reply;
use serde_json::json;
use std::thread;
use std::time::{Duration, Instant};

pub const CHECKS: &[Check] = &[
    Check {
        name: "hold_scales_across_users",
        about: "with --hold-us, 4 workers on 40 users drain markedly faster than 1",
        since: 8,
        alone: true,
        run: hold_scales_across_users,
    },
    Check {
        name: "read_not_blocked_by_other_users",
        about: "512 balance reads of other users, on a server given one CPU, are answered promptly while one user's hold is in progress",
        since: 8,
        alone: true,
        run: read_not_blocked_by_other_users,
    },
    Check {
        name: "new_users_not_blocked_by_a_hold",
        about: "31 new users' first events, on 32 workers and one CPU, run beside one user's hold instead of after it",
        since: 8,
        alone: true,
        run: new_users_not_blocked_by_a_hold,
    },
];

fn hold_scales_across_users(ctx: &mut Ctx) -> Outcome {
    let users: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
    require_speedup(
        ctx,
        &["--hold-us", "10000"],
        &users,
        Duration::from_millis(10),
        "Events for different users still take turns: a lock that every user needs is held across the --hold-us work. Give each user a lock of its own, found through a map that is locked only to look the user up, so that only events for the same user wait for each other.",
    )
}

/// Starts a server given one CPU with `workers` workers and a hold of `hold`, and begins one
/// hold on user "hot": returns the server's address once the hold is surely under way.
fn hold_in_progress(
    ctx: &mut Ctx,
    workers: usize,
    hold: Duration,
) -> Outcome<std::net::SocketAddr> {
    // One CPU: a map sharded by the CPUs it may use then has few shards, so that a hold that
    // keeps a whole shard locked shows on every run, not by chance.
    ctx.one_cpu();
    let hold_us = hold.as_micros().to_string();
    let addr = ctx.serve(&["--hold-us", &hold_us, "--workers", &workers.to_string()])?;
    let mut writer = ctx.client(addr)?;
    let buy = json!({"user": "hot", "action": "buy", "amount": 5}).to_string();
    // The event creates "hot", and its hold is the one the check runs beside: once the user is
    // in the map, its lock (and only its lock) is held through the hold.
    writer.expect(&buy, &reply::accepted())?;
    // A worker takes the event at once; a tenth of the hold later it surely holds "hot".
    thread::sleep(hold / 10);
    ctx.log.note(
        "checker",
        format!("a {} ms hold on \"hot\" is in progress", hold.as_millis()),
    );
    Ok(addr)
}

fn read_not_blocked_by_other_users(ctx: &mut Ctx) -> Outcome {
    const HOLD: Duration = Duration::from_millis(500);
    const READS: usize = 512;
    let addr = hold_in_progress(ctx, 2, HOLD)?;
    let mut reader = ctx.client(addr)?.quiet();
    let mut queries = String::new();
    for k in 0..READS {
        queries.push_str(&json!({"type": "balance", "user": format!("cold{k}")}).to_string());
        queries.push('\n');
    }
    reader.note(&format!(
        "reads the balances of {READS} other users in one write while \"hot\" is held"
    ));
    let asked = Instant::now();
    reader.send(queries.as_bytes())?;
    let limit = HOLD / 3;
    for k in 0..READS {
        let left = limit.saturating_sub(asked.elapsed());
        reader.recv_json_within(left).map_err(|f| {
            if f.observed {
                return f;
            }
            let hint = if k == 0 {
                "Not one read of another user was answered while \"hot\" was held: reads wait for a lock that the worker holds through its risk check, one lock for every user. With a lock per user, reading \"cold\" never touches the lock of \"hot\"."
            } else {
                "Some reads of other users were answered at once and others waited for the hold on \"hot\" to end: a lock that guards a *group* of users (a map's shard, say) is held through the risk check. Take the user's own lock out of the map, let go of the map, and only then hold the user's lock."
            };
            fail!("{k} of {READS} balance reads of other users were answered within {} ms while \"hot\" was held for {} ms", limit.as_millis(), HOLD.as_millis())
                .hint(hint)
        })?;
    }
    reader.note(&format!(
        "all {READS} answered in {} ms",
        asked.elapsed().as_millis()
    ));
    Ok(())
}

fn new_users_not_blocked_by_a_hold(ctx: &mut Ctx) -> Outcome {
    const HOLD: Duration = Duration::from_millis(400);
    const NEWCOMERS: usize = 31;
    let addr = hold_in_progress(ctx, NEWCOMERS + 1, HOLD)?;
    let mut c = ctx.client(addr)?.quiet();
    let mut events = String::new();
    for k in 0..NEWCOMERS {
        events.push_str(
            &json!({"user": format!("new{k}"), "action": "buy", "amount": 1}).to_string(),
        );
        events.push('\n');
    }
    c.note(&format!(
        "sends the first events of {NEWCOMERS} new users in one write while \"hot\" is held; each has its own {} ms hold, on a worker of its own",
        HOLD.as_millis()
    ));
    let sent = Instant::now();
    c.send(events.as_bytes())?;
    for _ in 0..NEWCOMERS {
        let got = c.recv_json()?;
        reply::compare(b"(a new user's first event)", &reply::accepted(), &got)?;
    }
    // Read every newcomer's balance in one write, again and again, noting when each one
    // first shows its event.
    let mut queries = String::new();
    for k in 0..NEWCOMERS {
        queries.push_str(&json!({"type": "balance", "user": format!("new{k}")}).to_string());
        queries.push('\n');
    }
    let mut done: Vec<Option<Duration>> = vec![None; NEWCOMERS];
    let give_up = sent + Duration::from_secs(3);
    while done.iter().any(Option::is_none) && Instant::now() < give_up {
        c.send(queries.as_bytes())?;
        for slot in done.iter_mut() {
            let got = c.recv_json_within(Duration::from_secs(3)).map_err(|f| {
                if f.observed {
                    return f;
                }
                fail!("reading the newcomers' balances took more than 3 s while holds were in progress")
                    .hint("Even the balance reads waited: one lock guards every user and is held through each hold, so reads and events of all users wait for every risk check in turn. Give each user a lock of its own.")
            })?;
            if slot.is_none() && got.get("balance").and_then(|b| b.as_i64()) == Some(1) {
                *slot = Some(sent.elapsed());
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    // In parallel, every newcomer is done one hold after the send: a margin of half a hold.
    let limit = HOLD * 3 / 2;
    let late = done.iter().filter(|d| d.is_none_or(|d| d > limit)).count();
    c.note(&format!(
        "{} of {NEWCOMERS} newcomers done within {} ms",
        NEWCOMERS - late,
        limit.as_millis()
    ));
    if late == 0 {
        return Ok(());
    }
    let never = done.iter().filter(|d| d.is_none()).count();
    let hint = if never > NEWCOMERS / 2 {
        format!("{never} of the {NEWCOMERS} newcomers were still not done 3 s after they were sent, on {} workers: their holds ran one after another. One lock is held through every user's hold, so no two users' events are ever processed at once: give each user a lock of its own.", NEWCOMERS + 1)
    } else if late == NEWCOMERS {
        "Every newcomer waited for the hold on \"hot\" to end before its own began: adding a user needs the map for writing, and the map (a read or write guard of it) is held while a user's risk check runs. Let go of the map as soon as the user's lock is found: keep only the user's lock through the hold.".to_string()
    } else {
        format!("{late} of the {NEWCOMERS} newcomers waited for the hold on \"hot\", the others did not: a lock that guards a *group* of users (a shard of a concurrent map, say) is held through the risk check, and adding a user of that group needs it. Take the user's own lock out of the map, let go of the map, then hold the user's lock.")
    };
    let times: Vec<String> = done
        .iter()
        .map(|d| d.map_or("-".into(), |d| d.as_millis().to_string()))
        .collect();
    Err(fail!("{late} of {NEWCOMERS} new users' first events were not done {} ms after they were sent, though each takes a {} ms hold on a worker of its own", limit.as_millis(), HOLD.as_millis())
        .got(format!("done after (ms): {}", times.join(" ")))
        .hint(hint))
}
