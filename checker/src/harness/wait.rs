//! Small steps that many checks share: clients at the same time, and polling with a deadline.

use crate::fail;
use crate::harness::failure::{Failure, Outcome};
use crate::oracle::client::Client;
use std::thread;
use std::time::{Duration, Instant};

/// Runs `work(i, client)` for every client at the same time, a thread each. The outcome is the
/// first failure, summed up when several clients failed ("37 of 100 clients timed out waiting
/// for a reply; first: ...").
pub fn concurrently(
    clients: Vec<Client>,
    work: impl Fn(usize, Client) -> Outcome + Sync,
) -> Outcome {
    let total = clients.len();
    let failures: Vec<Failure> = thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(i, c)| scope.spawn(move || work(i, c)))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(fail!("a client thread panicked")))
                    .err()
            })
            .collect()
    });
    summarise(failures, total)
}

/// One failure for many: the first, its message prefixed with how many clients failed, and how
/// (when they all failed alike).
fn summarise(mut failures: Vec<Failure>, total: usize) -> Outcome {
    if failures.is_empty() {
        return Ok(());
    }
    let count = failures.len();
    let alike = failures
        .iter()
        .all(|f| f.symptom.is_some() && f.symptom == failures[0].symptom);
    let mut first = failures.swap_remove(0);
    if count > 1 {
        let how = match (alike, first.symptom) {
            (true, Some(symptom)) => symptom,
            _ => "failed",
        };
        first.message = format!("{count} of {total} clients {how}; first: {}", first.message);
    }
    Err(first)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_failures_alike_are_summed_up_in_one() {
        let timeout = || fail!("[client 3] waited").symptom("timed out waiting for a reply");
        let f = summarise(vec![timeout(), timeout(), timeout()], 100).unwrap_err();
        assert_eq!(
            f.message,
            "3 of 100 clients timed out waiting for a reply; first: [client 3] waited"
        );
        let mixed = vec![timeout(), fail!("wrong reply")];
        let f = summarise(mixed, 4).unwrap_err();
        assert_eq!(f.message, "2 of 4 clients failed; first: [client 3] waited");
        let f = summarise(vec![fail!("alone")], 4).unwrap_err();
        assert_eq!(f.message, "alone");
        assert!(summarise(Vec::new(), 4).is_ok());
    }
}
