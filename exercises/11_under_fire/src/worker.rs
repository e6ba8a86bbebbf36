//! The workers: a pool of OS threads that take events off the queue and process them.

use std::thread::sleep;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::protocol::Event;
use crate::state::Balances;
use crate::sync::queue::Receiver;
use crate::sync::thread::{self, JoinHandle};
use crate::sync::Arc;

/// Starts `count` worker threads. Each processes events until every sender of the queue is gone
/// and the queue is empty, then drops its clone of `done` and exits.
///
/// The workers are plain `std::thread`s, not tokio tasks: processing an event blocks (the
/// `--work-us` sleep stands for CPU work), and blocking belongs on threads of our own, never on
/// the runtime's threads that the connections need.
pub fn spawn(
    count: usize,
    queue: Receiver<Event>,
    balances: Arc<Balances>,
    metrics: Arc<Metrics>,
    work: Duration,
    hold: Duration,
    done: mpsc::Sender<()>,
) -> Vec<JoinHandle<()>> {
    (0..count)
        .map(|index| {
            // The receiver can be cloned: all workers take from the one queue, and each event
            // goes to exactly one of them.
            let queue = queue.clone();
            let balances = Arc::clone(&balances);
            let metrics = Arc::clone(&metrics);
            // Never used to send: the thread drops it when it ends, even by a panic, and `run`
            // waits for the moment the last clone is gone.
            let done = done.clone();
            thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || {
                    // `recv` parks this thread until an event arrives, and fails once the queue
                    // is empty and every sender is gone. So during a shutdown the workers go on
                    // until every accepted event is processed, and only then exit.
                    while let Ok(event) = queue.recv() {
                        // The work does not need the balances, so it happens before anything is
                        // locked, and the workers really do it at the same time.
                        sleep(work);
                        let outcome = balances.apply(event, hold);
                        metrics.event_processed(outcome);
                    }
                    drop(done);
                })
                .expect("failed to spawn a worker thread")
        })
        .collect()
}
