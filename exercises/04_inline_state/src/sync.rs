//! Every type that threads share comes from this module: the standard library's own, or, with
//! the `loom` feature, loom's.
//!
//! loom is a model checker for concurrent Rust. A test inside `loom::model` runs again and again,
//! once for every way its threads can interleave at each lock, atomic operation and thread
//! switch (and, for atomics, for every value the memory model lets a load return). A race that
//! shows once in a million runs on a real machine fails on every `cargo test --features loom`.
//! loom can only see its own types, so the code takes them from here, never from `std::sync`.

#[cfg(not(feature = "loom"))]
pub use std::sync::{atomic, Arc, Mutex, RwLock};
#[cfg(not(feature = "loom"))]
pub use std::thread;

#[cfg(feature = "loom")]
pub use loom::sync::{atomic, Arc, Mutex, RwLock};
#[cfg(feature = "loom")]
pub use loom::thread;

/// Runs `check` under loom: every interleaving of its threads with at most three preemptions
/// (switches away from a thread that could have gone on), which finds the races of a few
/// operations each in a fraction of a second.
#[cfg(all(test, feature = "loom"))]
pub fn model(check: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(check);
}
