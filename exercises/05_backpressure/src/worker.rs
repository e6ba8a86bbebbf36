//! The worker: one OS thread that takes events off the queue and processes them.

use std::thread::sleep;
use std::time::Duration;

use crate::protocol::Event;
use crate::state::Balances;
use crate::sync::queue::Receiver;
use crate::sync::thread::{self, JoinHandle};

/// Starts the worker thread. It processes events until every sender of the queue is gone and
/// the queue is empty.
///
/// The worker is a plain `std::thread`, not a tokio task: processing an event blocks (the
/// `--work-us` sleep stands for CPU work), and blocking belongs on a thread of our own, never on
/// one of the runtime's threads that the connections need.
pub fn spawn(queue: Receiver<Event>, work: Duration) -> JoinHandle<()> {
    thread::Builder::new()
        .name("worker".to_string())
        .spawn(move || {
            // The worker owns the balances outright. Nobody else can reach them, so they need
            // no lock.
            let mut balances = Balances::default();
            // TODO: The consumer side: process the queued events one by one, and end once no more
            //       can ever come. Each event costs the simulated work, then changes the balances.
            //       Concept: how a queue tells its receiver that every sender is gone. Trap: a loop
            //       that spins, or sleeps and polls, while the queue is empty.
            todo!()
        })
        .expect("failed to spawn the worker thread")
}
