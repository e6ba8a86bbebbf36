//! Every type that threads share comes from this module: the standard library's own, or, with
//! the `loom` feature, loom's.
//!
//! loom is a model checker for concurrent Rust. A test inside `loom::model` runs again and again,
//! once for every way its threads can interleave at each lock, atomic operation and thread
//! switch (and, for atomics, for every value the memory model lets a load return). A race that
//! shows once in a million runs on a real machine fails on every `cargo test --features loom`.
//! loom can only see its own types, so the code takes them from here, never from `std::sync`.

// ANCHOR: shim
#[cfg(not(feature = "loom"))]
pub use std::sync::{atomic, Arc, Mutex, RwLock};
#[cfg(not(feature = "loom"))]
pub use std::thread;

#[cfg(feature = "loom")]
pub use loom::sync::{atomic, Arc, Mutex, RwLock};
#[cfg(feature = "loom")]
pub use loom::thread;
// ANCHOR_END: shim

/// Runs `check` under loom: every interleaving of its threads with at most three preemptions
/// (switches away from a thread that could have gone on), which finds the races of a few
/// operations each in a fraction of a second.
#[cfg(all(test, feature = "loom"))]
pub fn model(check: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(check);
}

/// The bounded queue between the connections and the workers: crossbeam's channel, or, with the
/// `loom` feature, a small model of it with the same methods (loom cannot see inside crossbeam).
pub mod queue {
    #[cfg(not(feature = "loom"))]
    pub use crossbeam_channel::{bounded, Receiver, Sender};

    #[cfg(feature = "loom")]
    pub use super::model_queue::{bounded, Receiver, Sender};
}

/// A bounded multi-producer, multi-consumer queue made of loom's `Mutex` and `Condvar`: what the
/// model checks use in place of crossbeam's channel. Same semantics: `try_send` fails at once
/// when the queue is full; `recv` waits, and fails once the queue is empty and every sender is
/// gone.
#[cfg(feature = "loom")]
mod model_queue {
    use std::collections::VecDeque;
    use std::fmt;

    use loom::sync::{Arc, Condvar, Mutex};

    struct Channel<T> {
        state: Mutex<State<T>>,
        /// Signalled when an item arrives or the last sender goes.
        changed: Condvar,
    }

    struct State<T> {
        items: VecDeque<T>,
        capacity: usize,
        senders: usize,
    }

    pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
        let channel = Arc::new(Channel {
            state: Mutex::new(State {
                items: VecDeque::new(),
                capacity,
                senders: 1,
            }),
            changed: Condvar::new(),
        });
        (Sender(Arc::clone(&channel)), Receiver(channel))
    }

    pub struct Sender<T>(Arc<Channel<T>>);

    impl<T> Sender<T> {
        /// Queues `item`, or hands it back at once when the queue is full.
        pub fn try_send(&self, item: T) -> Result<(), T> {
            let mut state = self.0.state.lock().unwrap();
            if state.items.len() == state.capacity {
                return Err(item);
            }
            state.items.push_back(item);
            drop(state);
            self.0.changed.notify_one();
            Ok(())
        }
    }

    impl<T> Clone for Sender<T> {
        fn clone(&self) -> Self {
            self.0.state.lock().unwrap().senders += 1;
            Sender(Arc::clone(&self.0))
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            let mut state = self.0.state.lock().unwrap();
            state.senders -= 1;
            if state.senders == 0 {
                drop(state);
                self.0.changed.notify_all();
            }
        }
    }

    impl<T> fmt::Debug for Sender<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Sender")
        }
    }

    pub struct Receiver<T>(Arc<Channel<T>>);

    impl<T> Receiver<T> {
        /// The next item, waiting for one; `Err` once the queue is empty and every sender gone.
        pub fn recv(&self) -> Result<T, ()> {
            let mut state = self.0.state.lock().unwrap();
            loop {
                if let Some(item) = state.items.pop_front() {
                    return Ok(item);
                }
                if state.senders == 0 {
                    return Err(());
                }
                state = self.0.changed.wait(state).unwrap();
            }
        }
    }

    impl<T> Clone for Receiver<T> {
        fn clone(&self) -> Self {
            Receiver(Arc::clone(&self.0))
        }
    }
}
