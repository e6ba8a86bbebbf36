// Step 09's classic mistake: counting with `+=` on an atomic.
use std::sync::atomic::AtomicU64;

pub struct Metrics {
    pub received: AtomicU64,
}

pub fn count(metrics: &Metrics) {
    metrics.received += 1;
}
