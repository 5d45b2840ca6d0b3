//! What the signer counts for `/metrics` besides its [`crate::RootStatus`]: how many
//! submissions wait now, how long they waited until a timestamp covered them, and how long
//! each publish took. Histograms use Prometheus' cumulative buckets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the histogram buckets; `+Inf` is implied.
pub const BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// A histogram of durations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations at or below each of [`BUCKETS`] (not cumulative).
    pub counts: [u64; BUCKETS.len()],
    /// Observations above the last bucket.
    pub over: u64,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        match BUCKETS.iter().position(|b| s <= *b) {
            Some(i) => self.counts[i] += 1,
            None => self.over += 1,
        }
        self.sum_seconds += s;
        self.count += 1;
    }

    /// Cumulative counts for each bucket, then `+Inf`.
    pub fn cumulative(&self) -> Vec<(String, u64)> {
        let mut total = 0;
        let mut out: Vec<(String, u64)> = BUCKETS
            .iter()
            .zip(self.counts)
            .map(|(b, c)| {
                total += c;
                (b.to_string(), total)
            })
            .collect();
        out.push(("+Inf".to_owned(), total + self.over));
        out
    }
}

/// The counters of one root of trust.
#[derive(Debug, Default)]
pub struct Counters {
    waiting: AtomicU64,
    submissions: Mutex<Histogram>,
    publishes: Mutex<Histogram>,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RootMetrics {
    /// Submissions waiting for a timestamp to cover them right now.
    pub waiting: u64,
    /// From submission to the timestamp that covered it (covered ones only).
    pub submission_seconds: Histogram,
    /// How long one publish (snapshot and timestamp pushed) took.
    pub publish_seconds: Histogram,
}

/// Counts one waiting submission for as long as it lives.
pub struct Waiting<'a>(&'a Counters);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    pub fn wait(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(self)
    }

    pub fn covered(&self, d: Duration) {
        if let Ok(mut h) = self.submissions.lock() {
            h.observe(d);
        }
    }

    pub fn published(&self, d: Duration) {
        if let Ok(mut h) = self.publishes.lock() {
            h.observe(d);
        }
    }

    pub fn read(&self) -> RootMetrics {
        RootMetrics {
            waiting: self.waiting.load(Ordering::Relaxed),
            submission_seconds: self
                .submissions
                .lock()
                .map(|h| h.clone())
                .unwrap_or_default(),
            publish_seconds: self.publishes.lock().map(|h| h.clone()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inf_counts_everything() {
        let mut h = Histogram::default();
        for ms in [10, 80, 80, 700, 400_000] {
            h.observe(Duration::from_millis(ms));
        }
        let c = h.cumulative();
        assert_eq!(c[0], ("0.05".to_owned(), 1));
        assert_eq!(c[1], ("0.1".to_owned(), 3));
        assert_eq!(c[4], ("1".to_owned(), 4));
        assert_eq!(c.last(), Some(&("+Inf".to_owned(), 5)));
        assert_eq!(h.count, 5);
    }

    #[test]
    fn a_waiting_submission_is_counted_until_it_ends() {
        let c = Counters::default();
        let w = c.wait();
        let w2 = c.wait();
        assert_eq!(c.read().waiting, 2);
        drop(w);
        drop(w2);
        assert_eq!(c.read().waiting, 0);
    }
}
