//! The harness: checks as data, the context they run in, the runner, and what a failure carries.
//!
//! - `check`: [`Check`](check::Check) and the [`Ctx`](check::Ctx) a check runs in;
//! - `runner`: one check on its own thread with a watchdog, its result and replay file;
//! - `failure`: what went wrong, expected and got, and a hint;
//! - `transcript`: what a check saw, in order, for people and for replays;
//! - `wait`: polling with a deadline, and clients at the same time.

pub mod check;
pub mod failure;
pub mod runner;
pub mod transcript;
pub mod wait;
