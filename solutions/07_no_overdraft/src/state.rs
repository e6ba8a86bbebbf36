//! The users' balances, shared by the workers and the connections.

use std::collections::HashMap;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crate::protocol::{Action, Event};

/// Every user's balance. A user nobody has seen yet has a balance of 0.
#[derive(Debug, Default)]
pub struct Balances {
    /// User name to balance. Every worker applies events here and every connection may read
    /// it, so the map sits behind a lock. A `std::sync::Mutex` (not tokio's) is the right lock:
    /// it is never held across an `.await`. It *is* held across the risk check, which is what
    /// makes the overdraft check correct, and what makes it slow.
    map: Mutex<HashMap<String, i64>>,
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
        // ANCHOR: atomic_check_and_apply
        // The lock is taken before the balance is read and released after it is written: no
        // other worker can change the balance in between, so two sells can never both pass the
        // check against the same money. (The lock is poisoned only if a thread panicked while
        // holding it, which is a bug: let the panic spread.)
        let mut map = self.map.lock().expect("balances lock poisoned");
        let balance = map.entry(event.user).or_insert(0);
        // The risk check needs the current balance, so it runs under the lock. But this lock
        // guards *every* user: while we sleep here, all other workers and every balance query
        // wait, whichever user they are about.
        thread::sleep(hold);
        // Amounts are at most 10^9, so `as i64` cannot wrap.
        let amount = event.amount as i64;
        match event.action {
            Action::Buy => *balance += amount,
            Action::Sell if *balance >= amount => *balance -= amount,
            Action::Sell => return Outcome::Refused,
        }
        Outcome::Applied
        // ANCHOR_END: atomic_check_and_apply
    }

    /// The user's balance, 0 for a user never seen.
    pub fn get(&self, user: &str) -> i64 {
        let map = self.map.lock().expect("balances lock poisoned");
        map.get(user).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
}
