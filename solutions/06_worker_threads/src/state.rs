//! The users' balances, shared by the workers and the connections.

use std::collections::HashMap;

use crate::protocol::{Action, Event};
use crate::sync::Mutex;

// ANCHOR: balances
/// Every user's balance. A user nobody has seen yet has a balance of 0.
#[derive(Debug, Default)]
pub struct Balances {
    /// User name to balance. Every worker applies events here and every connection may read
    /// it, so the map sits behind a lock. A `std::sync::Mutex` (not tokio's) is the right lock:
    /// it is held for one lookup and one addition, never across an `.await` or a sleep.
    map: Mutex<HashMap<String, i64>>,
}
// ANCHOR_END: balances

impl Balances {
    /// Applies `event` and returns the user's new balance. A balance may go negative.
    pub fn apply(&self, event: Event) -> i64 {
        // ANCHOR: apply
        // One lock guard from the read to the write: no other thread can change the balance in
        // between. (The lock is poisoned only if a thread panicked while holding it, which is a
        // bug: let the panic spread rather than go on with balances that may be half updated.)
        let mut map = self.map.lock().expect("balances lock poisoned");
        let balance = map.entry(event.user).or_insert(0);
        // Amounts are at most 10^9, so `as i64` cannot wrap.
        match event.action {
            Action::Buy => *balance += event.amount as i64,
            Action::Sell => *balance -= event.amount as i64,
        }
        *balance
        // ANCHOR_END: apply
    }

    /// The user's balance, 0 for a user never seen.
    pub fn get(&self, user: &str) -> i64 {
        // ANCHOR: get
        let map = self.map.lock().expect("balances lock poisoned");
        map.get(user).copied().unwrap_or(0)
        // ANCHOR_END: get
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn event(user: &str, action: Action, amount: u64) -> Event {
        Event {
            user: user.to_string(),
            action,
            amount,
        }
    }

    #[test]
    fn buys_add_and_sells_subtract_per_user() {
        let balances = Balances::default();
        assert_eq!(balances.apply(event("alice", Action::Buy, 100)), 100);
        assert_eq!(balances.apply(event("bob", Action::Buy, 7)), 7);
        assert_eq!(balances.apply(event("alice", Action::Sell, 250)), -150);
        assert_eq!(balances.apply(event("bob", Action::Sell, 7)), 0);
        assert_eq!(balances.get("alice"), -150);
        assert_eq!(balances.get("nobody"), 0);
    }
}

/// Model checks (`cargo test --features loom`): the lesson's race, tried in every interleaving.
#[cfg(all(test, feature = "loom"))]
mod model {
    use super::tests::event;
    use super::*;
    use crate::sync::{model, Arc};

    #[test]
    fn concurrent_updates_of_one_user_are_never_lost() {
        model(|| {
            let balances = Arc::new(Balances::default());
            let other = {
                let balances = Arc::clone(&balances);
                loom::thread::spawn(move || balances.apply(event("alice", Action::Buy, 1)))
            };
            let mine = balances.apply(event("alice", Action::Buy, 2));
            let theirs = other.join().unwrap();
            // Each reply is the balance right after its own update, so one of them saw the
            // other's update too, and the later one is the sum of both.
            assert!(
                (mine, theirs) == (2, 3) || (mine, theirs) == (3, 1),
                "an update was lost: the buys of 2 and 1 replied {mine} and {theirs}"
            );
            assert_eq!(balances.get("alice"), 3);
        });
    }

    #[test]
    fn a_read_sees_an_update_whole_or_not_at_all() {
        model(|| {
            let balances = Arc::new(Balances::default());
            let worker = {
                let balances = Arc::clone(&balances);
                loom::thread::spawn(move || balances.apply(event("alice", Action::Buy, 5)))
            };
            let read = balances.get("alice");
            assert!(read == 0 || read == 5, "a read saw {read}");
            worker.join().unwrap();
            assert_eq!(balances.get("alice"), 5);
        });
    }
}
