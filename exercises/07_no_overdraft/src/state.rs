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
        // TODO: Make check and apply one atomic step: take the lock, read the user's balance
        //       (0 for a new user), do the risk check (`thread::sleep(hold)`) and apply the
        //       event, all under the same guard. A sell the balance cannot cover is not
        //       applied: return Outcome::Refused. Otherwise return Outcome::Applied.
        todo!()
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
