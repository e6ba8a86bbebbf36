//! The workers: a pool of OS threads that take events off the queue and process them.

use std::thread::sleep;
use std::time::Duration;

use crate::protocol::Event;
use crate::state::Balances;
use crate::sync::queue::Receiver;
use crate::sync::thread::{self, JoinHandle};
use crate::sync::Arc;

/// Starts `count` worker threads. Each processes events until every sender of the queue is gone
/// and the queue is empty.
///
/// The workers are plain `std::thread`s, not tokio tasks: processing an event blocks (the
/// `--work-us` sleep stands for CPU work), and blocking belongs on threads of our own, never on
/// the runtime's threads that the connections need.
pub fn spawn(
    count: usize,
    queue: Receiver<Event>,
    balances: Arc<Balances>,
    work: Duration,
) -> Vec<JoinHandle<()>> {
    (0..count)
        .map(|index| {
            // The receiver can be cloned: all workers take from the one queue, and each event
            // goes to exactly one of them.
            let queue = queue.clone();
            let balances = Arc::clone(&balances);
            thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || {
                    // TODO: One of several workers sharing the queue: take events until no more can
                    //       come, and process each. Goal (contract, --workers): N workers drain the
                    //       queue about N times faster than one. Trap: anything shared (a lock, a
                    //       guard of the queue) held while the work runs makes the workers take
                    //       turns.
                    todo!()
                })
                .expect("failed to spawn a worker thread")
        })
        .collect()
}
