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
            // ANCHOR: worker_loop
            // `recv` parks this thread until an event arrives, and fails once the queue is empty
            // and every sender is gone.
            while let Ok(event) = queue.recv() {
                sleep(work);
                balances.apply(event);
            }
            // ANCHOR_END: worker_loop
        })
        .expect("failed to spawn the worker thread")
}
