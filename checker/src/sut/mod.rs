//! The system under test: building it, starting it, watching it, stopping it.
//!
//! - `build`: `cargo build` of the crates to grade, with the compiler's first error kept;
//! - `crate_tests`: a crate's own tests (unit tests, model checks), run as checks;
//! - `process`: process groups that every exit path of the checker kills;
//! - `server`: a server under test, its output, memory and exit.

pub mod build;
pub mod crate_tests;
pub mod process;
pub mod server;
