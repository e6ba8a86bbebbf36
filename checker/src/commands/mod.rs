//! The checker's verbs, one module each.
//!
//! - `verify`: build what is graded, run each step's suite, report, remember;
//! - `journey`: where am I (`checker` alone), `list`, `hint`, `diff`, `solution`, `reset`,
//!   `track`; `own`: the own track's crates and `catch-up`;
//! - `watch`: re-verify on every save; `demo`: a step's problem, live and narrated;
//! - `replay`: a failed check's traffic, again; `report`: grade a class; `doctor`: is this
//!   machine ready.

pub mod demo;
pub mod doctor;
pub mod journey;
pub mod own;
pub mod replay;
pub mod report;
pub mod verify;
pub mod watch;
