//! Telling every connection that the server is shutting down, and by when.

use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

/// One connection's end of the shutdown signal.
///
/// `run` holds the single `broadcast::Sender` and sends the shutdown deadline once; every
/// connection task holds one of these, subscribed before the task was spawned, so none can miss
/// the signal.
#[derive(Debug)]
pub struct Shutdown {
    /// Receives the deadline when the server begins to shut down.
    notify: broadcast::Receiver<Instant>,
}

impl Shutdown {
    /// Wraps a receiver subscribed to the server's shutdown sender.
    pub fn new(notify: broadcast::Receiver<Instant>) -> Shutdown {
        Shutdown { notify }
    }

    /// Waits until the server begins to shut down, and returns the deadline by which this
    /// connection must be closed.
    ///
    /// Cancel safe: it can be a branch of `tokio::select!` that loses.
    pub async fn recv(&mut self) -> Instant {
        // Only one value is ever sent, so the receiver cannot lag behind. An error means the
        // sender is gone without sending, so the server is going away: shut down now.
        self.notify.recv().await.unwrap_or_else(|_| Instant::now())
    }
}

/// The instant `timeout` from now, or a far-off one if that would overflow.
pub fn deadline_after(timeout: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or(now + FAR)
}
