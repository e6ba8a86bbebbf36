//! Counters for the metrics request, kept without a lock.
//!
//! Each counter is an `AtomicU64`. Incrementing one never waits, so counting costs the
//! connections and the workers next to nothing, and a metrics query never waits for anyone: not
//! for a worker, not for a lock, not for room in the queue.
//!
//! Atomics keep each counter exact on its own. What they do not give for free is agreement
//! *between* counters: a snapshot reads four counters one after another while other threads keep
//! incrementing them. The rule clients rely on is `processed + dropped <= received`: nothing is
//! processed or dropped before it was received. Every snapshot must keep it, while connections
//! and workers go on counting.
//!
//! That is this step's lesson, and this module is yours to finish: which counter a snapshot
//! reads first, and which memory ordering each increment and each read needs. Two questions to
//! answer before you write code: what can change between two reads of a snapshot? And once one
//! thread has seen another thread's increment of one counter, what does it know about that
//! thread's earlier increment of a different counter?

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
        // TODO: Count one received event. Choose its memory ordering, and be able to say why (the
        //       rule every snapshot keeps is in the module documentation).
        todo!()
    }

    /// The queue was full and the event was answered `server_busy`.
    pub fn event_dropped(&self) {
        // TODO: Count one dropped event. A snapshot that sees this count must still keep the rule.
        todo!()
    }

    /// A worker is done with an event.
    pub fn event_processed(&self, outcome: Outcome) {
        // TODO: Count the event as processed, and as refused if it was. A snapshot that sees these
        //       counts must still keep the rule.
        todo!()
    }

    /// Reads all four counters. A snapshot always has `processed + dropped <= received`.
    pub fn snapshot(&self) -> Snapshot {
        // TODO: Read the four counters into a Snapshot that keeps the rule, whatever the other
        //       threads do while you read.
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
