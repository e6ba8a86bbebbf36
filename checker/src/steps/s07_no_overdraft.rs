//! Step 07: no overdraft. Checking the balance and applying a sell are one atomic step per
//! user, whatever the number of workers.

use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::harness::wait::concurrently;
use crate::oracle::client::Client;
use crate::oracle::queries::{balance_of, wait_balance};
use crate::oracle::reply;
use serde_json::json;
use std::time::{Duration, Instant};

pub const CHECKS: &[Check] = &[
    Check {
        name: "no_overdraft_sequential",
        about: "a sell beyond the balance is refused, a sell down to exactly 0 is applied",
        since: 7,
        alone: false,
        run: no_overdraft_sequential,
    },
    Check {
        name: "hold_is_under_the_users_lock",
        about: "4 events for one user with a 100 ms hold, on 4 workers, take 400 ms: the holds never overlap",
        since: 7,
        alone: false,
        run: hold_is_under_the_users_lock,
    },
    Check {
        name: "no_overdraft_concurrent",
        about: "50 concurrent sells of 10 against 100 leave exactly 0, never less",
        since: 7,
        alone: false,
        run: no_overdraft_concurrent,
    },
];

fn event(user: &str, action: &str, amount: u64) -> String {
    json!({"user": user, "action": action, "amount": amount}).to_string()
}

fn send_accepted(c: &mut Client, user: &str, action: &str, amount: u64) -> Outcome {
    c.expect(&event(user, action, amount), &reply::accepted())
}

const RACE_HINT: &str = "Check the balance, do the --hold-us work and apply the sell under one lock guard. Releasing the lock between the check and the update lets two sells both see enough money.";

fn no_overdraft_sequential(ctx: &mut Ctx) -> Outcome {
    // One worker: events are processed in the order they were queued.
    let addr = ctx.serve(&["--workers", "1"])?;
    let mut c = ctx.client(addr)?;
    send_accepted(&mut c, "olga", "buy", 100)?;
    send_accepted(&mut c, "olga", "sell", 60)?;
    wait_balance(
        &mut c,
        "olga",
        Duration::from_secs(5),
        |b| b == 40,
        "40 (100 - 60)",
    )?;
    // 60 more would go below zero: refused. The buy behind it shows it was processed.
    send_accepted(&mut c, "olga", "sell", 60)?;
    send_accepted(&mut c, "olga", "buy", 1)?;
    let b = wait_balance(
        &mut c,
        "olga",
        Duration::from_secs(5),
        |b| b == 41 || b < 0,
        "41: the sell of 60 refused, the buy of 1 applied",
    )?;
    if b < 0 {
        return Err(fail!("a sell took the balance below zero")
            .expected("41 (a sell of 60 against 40 is refused)")
            .got(b.to_string())
            .hint("From step 07 a sell that would take the balance below zero is not applied: it is refused, and still counts as processed."));
    }
    // Selling everything is allowed: the rule is "not below zero".
    send_accepted(&mut c, "olga", "sell", 41)?;
    send_accepted(&mut c, "olga", "buy", 1)?;
    wait_balance(&mut c, "olga", Duration::from_secs(5), |b| b == 1 || b == 42, "1: the sell of 41 down to 0 applied, then the buy of 1")
        .and_then(|b| match b {
            1 => Ok(()),
            _ => Err(fail!("a sell down to exactly 0 was refused").expected("1").got(b.to_string())),
        })
        .or_hint("Refuse only when the balance would go below zero: a balance of exactly 0 is fine (balance >= amount).")
}

fn no_overdraft_concurrent(ctx: &mut Ctx) -> Outcome {
    const SELLERS: usize = 10;
    const SELLS: usize = 5;
    let hold_us = 2000;
    let addr = ctx.serve(&["--workers", "8", "--hold-us", &hold_us.to_string()])?;
    let mut c = ctx.client(addr)?;
    send_accepted(&mut c, "rich", "buy", 100)?;
    wait_balance(&mut c, "rich", Duration::from_secs(5), |b| b == 100, "100")?;
    let sellers = ctx.quiet_clients(addr, SELLERS)?;
    c.note(&format!(
        "{SELLERS} clients each send {SELLS} sells of 10 at once (8 workers, --hold-us {hold_us})"
    ));
    concurrently(sellers, |_, mut s| {
        let line = format!("{}\n", event("rich", "sell", 10));
        s.send(line.repeat(SELLS).as_bytes())?;
        for _ in 0..SELLS {
            let got = s.recv_json()?;
            reply::compare(line.as_bytes(), &reply::accepted(), &got)?;
        }
        Ok(())
    })?;
    // Exactly 10 of the 50 sells fit in 100. Wait for the balance to reach 0, then keep
    // watching while the sells that could still be in flight finish their hold.
    let b = wait_balance(&mut c, "rich", Duration::from_secs(10), |b| b <= 0, "0: ten sells of 10 applied, forty refused")
        .or_hint("The balance stays above 0: sells are refused that the rule allows. Refuse a sell only when balance < amount.")?;
    let watch = Duration::from_micros(hold_us * 100).max(Duration::from_millis(300));
    let until = Instant::now() + watch;
    let mut lowest = b;
    while lowest == 0 && Instant::now() < until {
        lowest = lowest.min(balance_of(&mut c, "rich")?);
    }
    if lowest < 0 {
        return Err(fail!("concurrent sells overdrew the account")
            .expected("the balance never goes below 0; it ends at exactly 0")
            .got(format!("{lowest}"))
            .hint(RACE_HINT));
    }
    Ok(())
}

fn hold_is_under_the_users_lock(ctx: &mut Ctx) -> Outcome {
    const HOLD: Duration = Duration::from_millis(100);
    const EVENTS: u64 = 4;
    let hold_us = HOLD.as_micros().to_string();
    let addr = ctx.serve(&["--workers", "4", "--hold-us", &hold_us])?;
    let mut c = ctx.client(addr)?;
    let line = format!("{}\n", event("held", "buy", 1));
    c.note(&format!(
        "sends {EVENTS} buys of 1 for \"held\" in one write: 4 workers, a {} ms hold each",
        HOLD.as_millis()
    ));
    let sent = Instant::now();
    c.send(line.repeat(EVENTS as usize).as_bytes())?;
    for _ in 0..EVENTS {
        let got = c.recv_json()?;
        reply::compare(line.as_bytes(), &reply::accepted(), &got)?;
    }
    wait_balance(
        &mut c,
        "held",
        Duration::from_secs(5),
        |b| b == EVENTS as i64,
        "4",
    )?;
    let took = sent.elapsed();
    // The holds are under the user's lock, one after another: at least 4 holds. Overlapping
    // holds take one; a margin of one hold stays between the two.
    let least = HOLD * (EVENTS as u32 - 1);
    c.note(&format!(
        "all {EVENTS} applied after {} ms",
        took.as_millis()
    ));
    if took < least {
        let hint = if took < HOLD / 2 {
            format!("The 4 events were applied in {} ms, less than one hold: the --hold-us work is not done. It is a std::thread::sleep while the user's balance is locked, between the overdraft check and the update.", took.as_millis())
        } else {
            format!("The 4 holds of one user overlapped: all 4 events were done in {} ms, about one hold. The hold is the risk check that needs the current balance, so it runs while the user's balance is locked, between the check and the update: take the lock first, then hold, then check and apply, then let go.", took.as_millis())
        };
        return Err(fail!(
            "4 events for one user, each holding it for {} ms, were all applied after {} ms",
            HOLD.as_millis(),
            took.as_millis()
        )
        .expected(format!(
            "at least {} ms: one hold after another",
            least.as_millis()
        ))
        .got(format!("{} ms", took.as_millis()))
        .hint(hint));
    }
    Ok(())
}
