//! Every acceptance check, one module per step (the step where the check first appears).
//! Which checks each step runs is data: see `checker/steps.toml`.

use crate::harness::check::Check;

pub mod common;
pub mod s01_blocking_echo;
pub mod s02_async_echo;
pub mod s03_parse_events;
pub mod s04_inline_state;
pub mod s05_backpressure;
pub mod s06_worker_threads;
pub mod s07_no_overdraft;
pub mod s08_per_user_locks;
pub mod s09_atomic_metrics;
pub mod s10_graceful_shutdown;
pub mod s11_under_fire;
pub mod s12_fast;

/// All checks of all steps.
pub fn registry() -> impl Iterator<Item = &'static Check> {
    [
        s01_blocking_echo::CHECKS,
        s02_async_echo::CHECKS,
        s03_parse_events::CHECKS,
        s04_inline_state::CHECKS,
        s05_backpressure::CHECKS,
        s06_worker_threads::CHECKS,
        s07_no_overdraft::CHECKS,
        s08_per_user_locks::CHECKS,
        s09_atomic_metrics::CHECKS,
        s10_graceful_shutdown::CHECKS,
        s11_under_fire::CHECKS,
        s12_fast::CHECKS,
    ]
    .into_iter()
    .flatten()
}

/// The check with this name.
pub fn find(name: &str) -> Option<&'static Check> {
    registry().find(|c| c.name == name)
}
