//! Small steps that many checks share: clients at the same time, and polling with a deadline.

use crate::fail;
use crate::harness::failure::{Failure, Outcome};
use crate::oracle::client::Client;
use std::thread;
use std::time::{Duration, Instant};

/// Runs `work(i, client)` for every client at the same time, a thread each; the first failure
/// is the outcome.
pub fn concurrently(
    clients: Vec<Client>,
    work: impl Fn(usize, Client) -> Outcome + Sync,
) -> Outcome {
    thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(i, c)| scope.spawn(move || work(i, c)))
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(fail!("a client thread panicked")))
        })
    })
}

/// Polls `probe` every few milliseconds until it returns `Some`, or fails after `timeout`
/// with `on_timeout`'s failure (given the last value seen).
pub fn poll<T, S>(
    timeout: Duration,
    mut probe: impl FnMut() -> Outcome<(Option<T>, S)>,
    on_timeout: impl FnOnce(S) -> Failure,
) -> Outcome<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let (done, seen) = probe()?;
        if let Some(v) = done {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(on_timeout(seen));
        }
        thread::sleep(Duration::from_millis(2));
    }
}
