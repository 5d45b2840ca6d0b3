//! What the signer counts for `/metrics` besides its [`crate::RootStatus`]: how many
//! submissions wait now, how long they waited until a timestamp covered them, and how long
//! each publish took; and the Prometheus text of it all ([`render_metrics`], served by
//! [`crate::http`]). Histograms use Prometheus' cumulative buckets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use std::fmt::Write as _;

use time::OffsetDateTime;

use crate::service::RootStatus;

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
    pruned: AtomicU64,
    prune_failures: AtomicU64,
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
    /// Role versions retention deleted (crate::retention).
    pub pruned: u64,
    /// Prunes that failed (the publishes before them stand).
    pub prune_failures: u64,
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

    pub fn pruned(&self, deleted: u64) {
        self.pruned.fetch_add(deleted, Ordering::Relaxed);
    }

    pub fn prune_failed(&self) {
        self.prune_failures.fetch_add(1, Ordering::Relaxed);
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
            pruned: self.pruned.load(Ordering::Relaxed),
            prune_failures: self.prune_failures.load(Ordering::Relaxed),
        }
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One root of trust's status and counters, as `/metrics` shows them.
pub struct MetricsOf {
    pub name: String,
    pub status: RootStatus,
    pub counters: RootMetrics,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in rows {
        let _ = writeln!(out, "{name}{{{labels}}} {v}");
    }
}

fn histogram(out: &mut String, name: &str, help: &str, rows: &[(String, &Histogram)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (labels, h) in rows {
        for (le, n) in h.cumulative() {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum_seconds);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
    }
}

/// The families of [`RootMetrics`]: queue depth, leadership and the two histograms.
fn counter_families(out: &mut String, roots: &[MetricsOf]) {
    let root = |n: &str| format!("root_of_trust=\"{}\"", label(n));
    #[allow(clippy::cast_precision_loss)] // counts are far below 2^52
    let as_f = |v: u64| v as f64;
    family(
        out,
        "ocituf_signer_queue_depth",
        "gauge",
        "Submissions waiting for a timestamp to cover them.",
        roots
            .iter()
            .map(|r| (root(&r.name), as_f(r.counters.waiting)))
            .collect(),
    );
    family(
        out,
        "ocituf_signer_leader",
        "gauge",
        "1 while this instance is the one writer of the root's snapshot and timestamp (without a database: the instance lock, always 1; with one: it holds the lease).",
        roots
            .iter()
            .map(|r| (root(&r.name), f64::from(u8::from(r.status.leading))))
            .collect(),
    );
    #[allow(clippy::cast_precision_loss)] // tokens count grants: far below 2^52
    let token = |t: i64| t as f64;
    family(
        out,
        "ocituf_signer_fencing_token",
        "gauge",
        "The fencing token of the lease this replica holds (only while it leads, with a database).",
        roots
            .iter()
            .filter_map(|r| r.status.fencing_token.map(|t| (root(&r.name), token(t))))
            .collect(),
    );
    family(
        out,
        "ocituf_signer_pruned_total",
        "counter",
        "Role versions deleted by the retention rule after a publish.",
        roots
            .iter()
            .map(|r| (root(&r.name), as_f(r.counters.pruned)))
            .collect(),
    );
    family(
        out,
        "ocituf_signer_prune_failures_total",
        "counter",
        "Prunes that failed (the publish before each one stands; the next publish prunes again).",
        roots
            .iter()
            .map(|r| (root(&r.name), as_f(r.counters.prune_failures)))
            .collect(),
    );
    histogram(
        out,
        "ocituf_signer_submission_seconds",
        "From a submission to the published timestamp that covered it.",
        &roots
            .iter()
            .map(|r| (root(&r.name), &r.counters.submission_seconds))
            .collect::<Vec<_>>(),
    );
    histogram(
        out,
        "ocituf_signer_publish_seconds",
        "How long one publish of snapshot and timestamp took.",
        &roots
            .iter()
            .map(|r| (root(&r.name), &r.counters.publish_seconds))
            .collect::<Vec<_>>(),
    );
}

/// The Prometheus text exposition of every root's status and counters at `now`.
pub fn render_metrics(roots: &[MetricsOf], now: OffsetDateTime) -> String {
    let statuses: Vec<(String, RootStatus)> = roots
        .iter()
        .map(|r| (r.name.clone(), r.status.clone()))
        .collect();
    let mut out = String::new();
    let root = |n: &str| format!("root_of_trust=\"{}\"", label(n));
    #[allow(clippy::cast_precision_loss)] // versions and counts are far below 2^52
    let as_f = |v: u64| v as f64;
    family(
        &mut out,
        "ocituf_signer_publishes_total",
        "counter",
        "Snapshot and timestamp pairs this process published.",
        statuses
            .iter()
            .map(|(n, s)| (root(n), as_f(s.publishes)))
            .collect(),
    );
    family(
        &mut out,
        "ocituf_signer_published_version",
        "gauge",
        "The newest published version of each online role.",
        statuses
            .iter()
            .flat_map(|(n, s)| {
                [
                    ("timestamp", s.timestamp_version),
                    ("snapshot", s.snapshot_version),
                ]
                .into_iter()
                .filter_map(move |(role, v)| {
                    v.map(|v| (format!("{},role=\"{role}\"", root(n)), as_f(v)))
                })
            })
            .collect(),
    );
    family(
        &mut out,
        "ocituf_signer_seconds_until_expiry",
        "gauge",
        "Seconds until the published timestamp or snapshot expires (negative: expired).",
        statuses
            .iter()
            .flat_map(|(n, s)| {
                [
                    ("timestamp", s.timestamp_expires),
                    ("snapshot", s.snapshot_expires),
                ]
                .into_iter()
                .filter_map(move |(role, at)| {
                    at.map(|at| {
                        (
                            format!("{},role=\"{role}\"", root(n)),
                            (at - now).as_seconds_f64().round(),
                        )
                    })
                })
            })
            .collect(),
    );
    family(
        &mut out,
        "ocituf_signer_last_batch_failed",
        "gauge",
        "1 when the last batch of this root of trust failed.",
        statuses
            .iter()
            .map(|(n, s)| (root(n), f64::from(u8::from(s.last_error.is_some()))))
            .collect(),
    );
    family(
        &mut out,
        "ocituf_signer_forked_roles",
        "gauge",
        "Targets roles whose newest number has rival versions awaiting a writer's merge.",
        statuses
            .iter()
            .map(|(n, s)| (root(n), as_f(s.forked.len() as u64)))
            .collect(),
    );
    counter_families(&mut out, roots);
    out
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

    #[test]
    fn metrics_escape_labels_and_count_down_to_expiry() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let st = RootStatus {
            timestamp_version: Some(7),
            snapshot_version: Some(5),
            timestamp_expires: Some(now + time::Duration::hours(1)),
            publishes: 3,
            last_error: Some("boom".to_owned()),
            ..RootStatus::default()
        };
        let mut counters = RootMetrics {
            waiting: 2,
            pruned: 9,
            ..RootMetrics::default()
        };
        counters
            .submission_seconds
            .observe(std::time::Duration::from_millis(700));
        let m = render_metrics(
            &[MetricsOf {
                name: "a\"b".to_owned(),
                status: st,
                counters,
            }],
            now,
        );
        assert!(
            m.contains("ocituf_signer_queue_depth{root_of_trust=\"a\\\"b\"} 2"),
            "{m}"
        );
        assert!(
            m.contains(
                "ocituf_signer_submission_seconds_bucket{root_of_trust=\"a\\\"b\",le=\"0.5\"} 0"
            ),
            "{m}"
        );
        assert!(
            m.contains(
                "ocituf_signer_submission_seconds_bucket{root_of_trust=\"a\\\"b\",le=\"1\"} 1"
            ),
            "{m}"
        );
        assert!(
            m.contains("ocituf_signer_submission_seconds_count{root_of_trust=\"a\\\"b\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("ocituf_signer_pruned_total{root_of_trust=\"a\\\"b\"} 9"),
            "{m}"
        );
        assert!(
            m.contains("ocituf_signer_publishes_total{root_of_trust=\"a\\\"b\"} 3"),
            "{m}"
        );
        assert!(
            m.contains(
                "ocituf_signer_published_version{root_of_trust=\"a\\\"b\",role=\"timestamp\"} 7"
            ),
            "{m}"
        );
        assert!(m.contains("ocituf_signer_seconds_until_expiry{root_of_trust=\"a\\\"b\",role=\"timestamp\"} 3600"), "{m}");
        assert!(
            m.contains("ocituf_signer_last_batch_failed{root_of_trust=\"a\\\"b\"} 1"),
            "{m}"
        );
        assert!(
            !m.contains("role=\"snapshot\"} 3600"),
            "no snapshot expiry was given: {m}"
        );
    }
}
