//! The checker's own model of what the server should answer: balances kept on the client side
//! and a small deterministic random generator for mixed traffic.

use crate::catalog::{EventReply, Step};
use crate::oracle::reply;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Expected replies to valid events at one step.
pub struct Ledger {
    reply: EventReply,
    balances: HashMap<String, i64>,
}

impl Ledger {
    pub fn new(step: &Step) -> Ledger {
        Ledger {
            reply: step.event_reply,
            balances: HashMap::new(),
        }
    }

    /// True at the steps that echo lines back (01 and 02).
    pub fn echoes(&self) -> bool {
        self.reply == EventReply::Echo
    }

    /// An event line and the reply it must get (no queue pressure assumed).
    pub fn event(&mut self, user: &str, action: &str, amount: u64) -> (String, Value) {
        let line = json!({"user": user, "action": action, "amount": amount}).to_string();
        let delta = if action == "buy" {
            amount as i64
        } else {
            -(amount as i64)
        };
        let balance = self.balances.entry(user.to_string()).or_default();
        *balance += delta;
        let want = match self.reply {
            EventReply::Balance => reply::balance(*balance),
            _ => reply::accepted(),
        };
        (line, want)
    }
}

/// xorshift64*: small, fast and the same on every machine, so a failing mix can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `count` lines of mixed traffic (valid events, garbage, bad events, unknown types) and the
/// reply each must get, in order.
pub fn mixed_lines(ledger: &mut Ledger, seed: u64, count: usize) -> Vec<(Vec<u8>, Value)> {
    let mut rng = Rng::new(seed);
    let users = ["alice", "bob", "carol", "dave", "eve"];
    (0..count)
        .map(|i| match rng.below(10) {
            0..=5 => {
                let user = users[rng.below(users.len() as u64) as usize];
                // Buys outweigh sells so that no balance goes below zero at any step.
                let action = if rng.below(4) == 0 { "sell" } else { "buy" };
                let amount = if action == "sell" {
                    1
                } else {
                    1 + rng.below(1000)
                };
                let (line, want) = ledger.event(user, action, amount);
                (line.into_bytes(), want)
            }
            6 => (
                format!("not json {i}").into_bytes(),
                reply::error("invalid_json"),
            ),
            7 => (
                b"{\"user\":\"alice\",\"action\":\"buy\",\"amount\":".to_vec(),
                reply::error("invalid_json"),
            ),
            8 => (
                json!({"user": users[i % users.len()], "action": "buy", "amount": 0})
                    .to_string()
                    .into_bytes(),
                reply::error("invalid_event"),
            ),
            _ => (
                json!({"type": format!("mystery-{i}")})
                    .to_string()
                    .into_bytes(),
                reply::error("unknown_type"),
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::find;

    #[test]
    fn ledger_follows_the_step() {
        let mut at04 = Ledger::new(find("4").unwrap());
        assert_eq!(at04.event("a", "buy", 10).1, reply::balance(10));
        assert_eq!(at04.event("a", "sell", 3).1, reply::balance(7));
        let mut at05 = Ledger::new(find("5").unwrap());
        assert_eq!(at05.event("a", "buy", 10).1, reply::accepted());
    }

    #[test]
    fn mixed_traffic_is_deterministic_and_mixed() {
        let step = find("4").unwrap();
        let a = mixed_lines(&mut Ledger::new(step), 7, 200);
        let b = mixed_lines(&mut Ledger::new(step), 7, 200);
        assert_eq!(a, b);
        for reason in ["invalid_json", "invalid_event", "unknown_type"] {
            assert!(
                a.iter()
                    .any(|(_, w)| w.get("reason") == Some(&json!(reason))),
                "{reason}"
            );
        }
        assert!(a.iter().any(|(_, w)| w.get("balance").is_some()));
    }
}
