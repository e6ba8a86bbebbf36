//! The users' balances, shared by the workers and the connections, with one lock per user.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use compact_str::CompactString;
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
    users: DashMap<CompactString, Arc<Mutex<i64>>>,
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
        let account = self.account(&event.user);
        // The user's lock is taken before the balance is read and released after it is written:
        // no other worker can change *this user's* balance in between. (The lock is poisoned only
        // if a thread panicked while holding it, which is a bug: let the panic spread.)
        let mut balance = account.lock().expect("balance lock poisoned");
        // The risk check needs the current balance, so it runs under the lock; but this lock
        // guards one user only, and workers busy with other users go on in parallel.
        thread::sleep(hold);
        // Amounts are at most 10^9, so `as i64` cannot wrap.
        let amount = event.amount as i64;
        match event.action {
            Action::Buy => *balance += amount,
            Action::Sell if *balance >= amount => *balance -= amount,
            Action::Sell => return Outcome::Refused,
        }
        Outcome::Applied
    }

    /// The user's balance, 0 for a user never seen.
    pub fn get(&self, user: &str) -> i64 {
        // The shard is locked (shared) only while the `Arc` is cloned; a user never seen is not
        // added, so queries cannot fill the map.
        let Some(account) = self.users.get(user).map(|entry| Arc::clone(entry.value())) else {
            return 0;
        };
        // Waits only if a worker is in the middle of an event for this same user.
        let balance = *account.lock().expect("balance lock poisoned");
        balance
    }

    /// The lock around `user`'s balance, created at 0 the first time the user is seen.
    fn account(&self, user: &str) -> Arc<Mutex<i64>> {
        // Most events are for users already known, and a shared lock on one shard finds them.
        if let Some(entry) = self.users.get(user) {
            return Arc::clone(entry.value());
        }
        // A new user. `entry` locks the shard for writing and looks again, because another
        // worker may have added the same user since our lookup: both then get the same lock.
        Arc::clone(
            self.users
                .entry(CompactString::from(user))
                .or_default()
                .value(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn event(user: &str, action: Action, amount: u64) -> Event {
        Event {
            user: user.into(),
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
