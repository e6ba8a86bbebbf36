//! The users' balances, owned by the worker.

use std::collections::HashMap;

use crate::protocol::{Action, Event};

/// Every user's balance. A user nobody has seen yet has a balance of 0.
#[derive(Debug, Default)]
pub struct Balances {
    /// User name to balance. Only the worker thread touches it, so it needs no lock: the queue
    /// is the only way in.
    map: HashMap<String, i64>,
}

impl Balances {
    /// Applies `event` and returns the user's new balance. A balance may go negative.
    pub fn apply(&mut self, event: Event) -> i64 {
        let balance = self.map.entry(event.user).or_insert(0);
        // Amounts are at most 10^9, so `as i64` cannot wrap.
        match event.action {
            Action::Buy => *balance += event.amount as i64,
            Action::Sell => *balance -= event.amount as i64,
        }
        *balance
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
        let mut balances = Balances::default();
        assert_eq!(balances.apply(event("alice", Action::Buy, 100)), 100);
        assert_eq!(balances.apply(event("bob", Action::Buy, 7)), 7);
        assert_eq!(balances.apply(event("alice", Action::Sell, 250)), -150);
        assert_eq!(balances.apply(event("bob", Action::Sell, 7)), 0);
    }
}
