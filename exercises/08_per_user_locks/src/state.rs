//! The users' balances, shared by the workers and the connections, with one lock per user.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use dashmap::DashMap;

use crate::protocol::{Action, Event};

/// Every user's balance. A user nobody has seen yet has a balance of 0.
#[derive(Debug, Default)]
pub struct Balances {
    /// User name to that user's balance, behind that user's own lock.
    ///
    /// Two kinds of lock, each with its own job:
    /// - The `DashMap` finds a user's entry. It is split into shards, each behind its own
    ///   read-write lock, and a shard stays locked only for the lookup or the insertion.
    /// - The `Mutex<i64>` guards one user's balance. It is held from the overdraft check, through
    ///   the risk check, to the update: only events for the same user wait for it.
    ///
    /// The `Arc` is what lets the two be held at different times: a worker clones the user's
    /// `Arc` out of the map, lets go of the shard, and only then locks the balance. Holding a
    /// shard through a risk check would block every other user in that shard.
    users: DashMap<String, Arc<Mutex<i64>>>,
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The balance changed.
    Applied,
    /// A sell that would have taken the balance below zero. The balance did not change.
    Refused,
}

impl Balances {
    /// Applies `event`, unless it is a sell the balance cannot cover. `hold` is the risk check:
    /// work that needs the user's current balance, done while that balance is locked.
    pub fn apply(&self, event: Event, hold: Duration) -> Outcome {
        // TODO: Lock only this user's balance (`self.account(&event.user)`), then check, hold
        //       (`thread::sleep(hold)`) and apply under that one lock, as in step 07: a sell
        //       the balance cannot cover returns Outcome::Refused.
        todo!()
    }

    /// The user's balance, 0 for a user never seen.
    pub fn get(&self, user: &str) -> i64 {
        // TODO: Read `user`'s balance, 0 for a user never seen, without adding the user to the
        //       map: clone the user's `Arc` out of the DashMap, let the map's guard go, then lock
        //       only that user's balance. A read for one user never waits for another one.
        todo!()
    }

    /// The lock around `user`'s balance, created at 0 the first time the user is seen.
    fn account(&self, user: &str) -> Arc<Mutex<i64>> {
        // TODO: Return the lock around `user`'s balance, created at 0 the first time the
        //       user is seen (`self.users.entry(..).or_default()`). Clone the `Arc` out and let
        //       the DashMap guard go at once: a guard kept alive locks a whole shard of users.
        todo!()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn event(user: &str, action: Action, amount: u64) -> Event {
        Event {
            user: user.to_string(),
            action,
            amount,
        }
    }

    #[test]
    fn a_sell_is_refused_when_the_balance_cannot_cover_it() {
        let balances = Balances::default();
        let apply =
            |user, action, amount| balances.apply(event(user, action, amount), Duration::ZERO);
        assert_eq!(apply("alice", Action::Sell, 1), Outcome::Refused);
        assert_eq!(apply("alice", Action::Buy, 100), Outcome::Applied);
        assert_eq!(apply("alice", Action::Sell, 250), Outcome::Refused);
        assert_eq!(apply("alice", Action::Sell, 100), Outcome::Applied);
        assert_eq!(balances.get("alice"), 0);
        assert_eq!(balances.get("nobody"), 0);
    }

    #[test]
    fn concurrent_sells_never_overdraw() {
        let balances = Arc::new(Balances::default());
        balances.apply(event("alice", Action::Buy, 100), Duration::ZERO);
        // Fifty sells of 10 at once, each holding the balance for a moment between its check
        // and its update: exactly ten can be covered.
        let sellers: Vec<_> = (0..50)
            .map(|_| {
                let balances = Arc::clone(&balances);
                thread::spawn(move || {
                    balances.apply(event("alice", Action::Sell, 10), Duration::from_micros(200))
                })
            })
            .collect();
        let applied = sellers
            .into_iter()
            .map(|seller| seller.join().unwrap())
            .filter(|outcome| *outcome == Outcome::Applied)
            .count();
        assert_eq!(applied, 10);
        assert_eq!(balances.get("alice"), 0);
    }

    #[test]
    fn other_users_do_not_wait_for_a_risk_check() {
        let balances = Arc::new(Balances::default());
        balances.apply(event("bob", Action::Buy, 5), Duration::ZERO);
        let slow = {
            let balances = Arc::clone(&balances);
            thread::spawn(move || {
                balances.apply(event("alice", Action::Buy, 1), Duration::from_millis(500))
            })
        };
        thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        assert_eq!(balances.get("bob"), 5);
        balances.apply(event("carol", Action::Buy, 1), Duration::ZERO);
        assert!(started.elapsed() < Duration::from_millis(250));
        slow.join().unwrap();
    }
}
