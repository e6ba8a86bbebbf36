//! Counters for the metrics request, kept without a lock.
//!
//! Each counter is an `AtomicU64`. Incrementing one never waits, so counting costs the
//! connections and the workers next to nothing, and a metrics query never waits for anyone: not
//! for a worker, not for a lock, not for room in the queue.
//!
//! Atomics keep each counter exact on its own. What they do not give for free is agreement
//! *between* counters: a snapshot reads four counters one after another while other threads keep
//! incrementing them. The rule clients rely on is `processed + dropped <= received`: nothing is
//! processed or dropped before it was received. Every snapshot keeps it, for two reasons:
//!
//! 1. **The order of the reads.** `processed` and `dropped` are read *before* `received`. Counters
//!    only grow, so whatever happens between the reads can only make `received` larger.
//! 2. **The memory ordering.** Reading `received` last is not enough on its own: a thread may see
//!    other threads' writes to *different* variables in a different order than they were made,
//!    so without more, the read of `received` could return a value older than the increment we
//!    just saw on `processed`. Hence the increments of `processed` and `dropped` are `Release`,
//!    and the reads of them are `Acquire`. When an `Acquire` read sees a value written by a
//!    `Release` write, everything the writing thread did before that write is visible to the
//!    reading thread. Each event was counted as received *before* it was counted as processed or
//!    dropped: by the same connection before it counted a drop, or by a connection before it
//!    put the event in the queue, from which a worker took it (the queue's send and receive
//!    synchronize the same way) before counting it processed. So once a snapshot has seen an
//!    event counted as processed or dropped, its later read of `received` sees that event too.
//!
//! `received` itself and `refused` need no ordering of their own (`Relaxed`): the ordering that
//! matters is carried by the `Release` increments and by the queue.

use serde::Serialize;

use crate::state::Outcome;
use crate::sync::atomic::{AtomicU64, Ordering};

/// The server's counters. Every field only ever goes up.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Valid events read. Counted by a connection before it offers the event to the queue.
    received: AtomicU64,
    /// Events taken off the queue and handled, applied or refused. Counted by a worker when it
    /// is done with the event.
    processed: AtomicU64,
    /// Events answered `server_busy`. Counted by a connection after the queue turned it away.
    dropped: AtomicU64,
    /// Sells refused for lack of balance. Counted by a worker, before `processed`.
    refused: AtomicU64,
}

/// The counters at one moment, as sent in a metrics reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub received: u64,
    pub processed: u64,
    pub dropped: u64,
    pub refused: u64,
}

impl Metrics {
    /// A connection read a valid event. Called before the event is offered to the queue.
    pub fn event_received(&self) {
        // TODO: Count one more received event (`fetch_add` on `self.received`). Which
        //       ordering does it need? The module documentation above explains.
        todo!()
    }

    /// The queue was full and the event was answered `server_busy`.
    pub fn event_dropped(&self) {
        // TODO: Count one more dropped event, so that whoever sees this increment also sees
        //       this event's `received` increment.
        todo!()
    }

    /// A worker is done with an event.
    pub fn event_processed(&self, outcome: Outcome) {
        // TODO: Count a refused sell in `refused` (before `processed`), then one more
        //       processed event, so that whoever sees it also sees this event's `received`.
        todo!()
    }

    /// Reads all four counters. A snapshot always has `processed + dropped <= received`.
    pub fn snapshot(&self) -> Snapshot {
        // TODO: Load the four counters into a Snapshot. Which counters you load first, and
        //       with which orderings, decides whether `processed + dropped <= received` holds
        //       in every snapshot.
        todo!()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_kind_of_event() {
        let metrics = Metrics::default();
        for _ in 0..4 {
            metrics.event_received();
        }
        metrics.event_dropped();
        metrics.event_processed(Outcome::Applied);
        metrics.event_processed(Outcome::Refused);
        let expected = Snapshot {
            received: 4,
            processed: 2,
            dropped: 1,
            refused: 1,
        };
        assert_eq!(metrics.snapshot(), expected);
    }
}
