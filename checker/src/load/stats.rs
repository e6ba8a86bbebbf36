//! Counting and timing replies: per-thread tallies merged at the end, latencies in an HDR
//! histogram (constant memory, ~0.1 % precision), and the percentiles a report shows.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

/// The largest latency recorded exactly, in nanoseconds (a minute); longer ones count as this.
const MAX_NS: u64 = 60_000_000_000;

/// A new latency histogram: 1 ns to a minute, three significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
}

/// Records one latency.
#[inline]
pub fn record(h: &mut Histogram<u64>, latency: Duration) {
    let ns = (latency.as_nanos() as u64).clamp(1, MAX_NS);
    h.saturating_record(ns);
}

/// A latency distribution, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p99_9: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// What one thread (or the whole run, once merged) saw.
#[derive(Clone, Debug)]
pub struct Tally {
    /// Requests written to a socket.
    pub sent: u64,
    /// Events answered `accepted` (or, at step 04, with the new balance; or echoed, or a RESP
    /// integer).
    pub accepted: u64,
    /// Events answered `server_busy`.
    pub rejected: u64,
    /// Reads answered with a balance.
    pub ok: u64,
    /// Error replies, and replies that were not what the request should get.
    pub error_replies: u64,
    /// Requests sent that never got a reply (the connection broke, or the run gave up).
    pub unanswered: u64,
    /// Connections that could not be opened, or broke.
    pub broken_connections: u64,
    /// Connections the server turned away at its connection limit (each also counts one
    /// error reply).
    pub refused_connections: u64,
    /// Latency of every answered event, and of every answered read.
    pub events: Histogram<u64>,
    pub reads: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            sent: 0,
            accepted: 0,
            rejected: 0,
            ok: 0,
            error_replies: 0,
            unanswered: 0,
            broken_connections: 0,
            refused_connections: 0,
            events: histogram(),
            reads: histogram(),
        }
    }
}

impl Tally {
    pub fn merge(&mut self, other: &Tally) {
        self.sent += other.sent;
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.ok += other.ok;
        self.error_replies += other.error_replies;
        self.unanswered += other.unanswered;
        self.broken_connections += other.broken_connections;
        self.refused_connections += other.refused_connections;
        // Both have the same bounds, so adding cannot fail.
        let _ = self.events.add(&other.events);
        let _ = self.reads.add(&other.reads);
    }

    /// Every request that got a reply.
    pub fn answered(&self) -> u64 {
        self.accepted + self.rejected + self.ok + self.error_replies
    }

    /// Error replies and unanswered requests: everything that did not go as it should.
    pub fn errors(&self) -> u64 {
        self.error_replies + self.unanswered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = histogram();
        // 1 µs to 1000 µs, once each.
        for us in 1..=1000u64 {
            record(&mut h, Duration::from_micros(us));
        }
        let l = Latency::of(&h);
        assert_eq!(l.count, 1000);
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.002 + 0.001;
        assert!(close(l.p50, 500.0), "p50 {}", l.p50);
        assert!(close(l.p90, 900.0), "p90 {}", l.p90);
        assert!(close(l.p99, 990.0), "p99 {}", l.p99);
        assert!(close(l.p99_9, 999.0), "p99.9 {}", l.p99_9);
        assert!(close(l.max, 1000.0), "max {}", l.max);
        assert!(close(l.mean, 500.5), "mean {}", l.mean);
    }

    #[test]
    fn one_slow_reply_in_a_thousand_shows_at_p99_9_only() {
        let mut h = histogram();
        for _ in 0..999 {
            record(&mut h, Duration::from_micros(100));
        }
        record(&mut h, Duration::from_millis(50));
        let l = Latency::of(&h);
        assert!(l.p99 < 101.0, "{l:?}");
        assert!(l.p99_9 < 101.0, "{l:?}");
        assert!(l.max > 49_000.0, "{l:?}");
    }

    #[test]
    fn an_empty_histogram_is_all_zero() {
        assert_eq!(Latency::of(&histogram()), Latency::default());
    }

    #[test]
    fn out_of_range_latencies_are_clamped_not_lost() {
        let mut h = histogram();
        record(&mut h, Duration::ZERO);
        record(&mut h, Duration::from_secs(3600));
        assert_eq!(h.len(), 2);
        assert!(Latency::of(&h).max >= 59_000_000.0);
    }

    #[test]
    fn tallies_merge_counts_and_latencies() {
        let mut a = Tally {
            sent: 10,
            accepted: 6,
            rejected: 2,
            error_replies: 1,
            unanswered: 1,
            ..Tally::default()
        };
        record(&mut a.events, Duration::from_micros(10));
        let mut b = Tally {
            sent: 5,
            ok: 5,
            ..Tally::default()
        };
        record(&mut b.reads, Duration::from_micros(20));
        record(&mut b.events, Duration::from_micros(30));
        a.merge(&b);
        assert_eq!((a.sent, a.answered(), a.errors()), (15, 14, 2));
        assert_eq!((a.events.len(), a.reads.len()), (2, 1));
    }
}
