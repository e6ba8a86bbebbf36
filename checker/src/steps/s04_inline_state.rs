//! Step 04: balances kept in memory; the reply to an event carries the new balance.

use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::harness::wait::concurrently;
use crate::oracle::ledger::Ledger;
use crate::oracle::reply;
use serde_json::{json, Value};

pub const CHECKS: &[Check] = &[
    Check {
        name: "balances_exact",
        about: "balances follow buys and sells exactly, per user",
        since: 4,
        run: balances_exact,
    },
    Check {
        name: "balances_concurrent",
        about: "50 concurrent clients on the same users lose no update",
        since: 4,
        run: balances_concurrent,
    },
];

fn balances_exact(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    let script = [
        ("alice", "buy", 100),
        ("bob", "buy", 50),
        ("alice", "sell", 40),
        ("carol", "buy", 1),
        ("bob", "sell", 50),
        ("alice", "buy", 1_000_000_000),
        ("bob", "buy", 3),
    ];
    for (user, action, amount) in script {
        let (line, want) = ledger.event(user, action, amount);
        c.expect(&line, &want)?;
    }
    // A second connection sees the same balances: state belongs to the server, not to a connection.
    let mut other = ctx.client(addr)?;
    let (line, want) = ledger.event("bob", "buy", 1);
    other.expect(&line, &want).or_hint("Balances are shared by every connection: keep them in one map behind an Arc, not in the connection task.")
}

fn balances_concurrent(ctx: &mut Ctx) -> Outcome {
    const CLIENTS: usize = 50;
    const EVENTS: u64 = 40;
    const USERS: [&str; 5] = ["u0", "u1", "u2", "u3", "u4"];
    let addr = ctx.serve(&[])?;
    let clients = ctx.quiet_clients(addr, CLIENTS)?;
    concurrently(clients, |i, mut c| {
        let user = USERS[i % USERS.len()];
        let line = json!({"user": user, "action": "buy", "amount": 1}).to_string();
        let mut last = 0;
        for _ in 0..EVENTS {
            let got = c.ask(&line)?;
            let balance = got.get("balance").and_then(Value::as_i64).ok_or_else(|| {
                fail!("a reply to an event lacks an integer balance").got(got.to_string())
            })?;
            if balance <= last {
                return Err(fail!("{user}'s balance went from {last} to {balance} after a buy")
                    .hint("Read and update the balance under the same lock: a balance read, then written back later, loses concurrent updates."));
            }
            last = balance;
        }
        Ok(())
    })?;
    let mut c = ctx.client(addr)?;
    let per_user = (CLIENTS / USERS.len()) as i64 * EVENTS as i64;
    for user in USERS {
        let line = json!({"user": user, "action": "buy", "amount": 1}).to_string();
        c.expect(&line, &reply::balance(per_user + 1))
            .or_hint("Updates were lost under concurrency: hold the lock for the whole read-modify-write of a balance.")?;
    }
    Ok(())
}
