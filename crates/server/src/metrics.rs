//! Counters of the proxy, served in the Prometheus text format at `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Mode;
use crate::decide::{Allowed, Refusal};
use crate::roots::Roots;

/// Counters; every one only goes up.
#[derive(Debug, Default)]
pub struct Metrics {
    served_signed: AtomicU64,
    served_platform: AtomicU64,
    served_unscoped_warn: AtomicU64,
    served_unscoped_allow: AtomicU64,
    refused_denied: AtomicU64,
    refused_other: AtomicU64,
    pub(crate) blob_requests: AtomicU64,
    pub(crate) blob_bytes: AtomicU64,
}

impl Metrics {
    pub(crate) fn decision(&self, allowed: &Allowed) {
        let c = match allowed {
            Allowed::Signed(_) => &self.served_signed,
            Allowed::Platform(_) => &self.served_platform,
            Allowed::Unscoped(Mode::Warn) => &self.served_unscoped_warn,
            Allowed::Unscoped(_) => &self.served_unscoped_allow,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refusal(&self, r: &Refusal) {
        let c = if r.code == "DENIED" {
            &self.refused_denied
        } else {
            &self.refused_other
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self, roots: &Roots) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        out.push_str(
            "# HELP ocituf_proxy_manifest_decisions_total Manifest requests decided, by outcome.\n\
             # TYPE ocituf_proxy_manifest_decisions_total counter\n",
        );
        for (outcome, c) in [
            ("signed", &self.served_signed),
            ("platform", &self.served_platform),
            ("unscoped_warn", &self.served_unscoped_warn),
            ("unscoped_allow", &self.served_unscoped_allow),
            ("denied", &self.refused_denied),
            ("other_error", &self.refused_other),
        ] {
            let _ = writeln!(
                out,
                "ocituf_proxy_manifest_decisions_total{{outcome=\"{outcome}\"}} {}",
                get(c)
            );
        }
        out.push_str(
            "# HELP ocituf_proxy_blob_requests_total Blob requests passed upstream.\n\
             # TYPE ocituf_proxy_blob_requests_total counter\n",
        );
        let _ = writeln!(
            out,
            "ocituf_proxy_blob_requests_total {}",
            get(&self.blob_requests)
        );
        out.push_str(
            "# HELP ocituf_proxy_blob_bytes_total Blob bytes streamed to clients.\n\
             # TYPE ocituf_proxy_blob_bytes_total counter\n",
        );
        let _ = writeln!(
            out,
            "ocituf_proxy_blob_bytes_total {}",
            get(&self.blob_bytes)
        );
        out.push_str(
            "# HELP ocituf_proxy_refreshes_total Refreshes of trusted metadata, per root of trust.\n\
             # TYPE ocituf_proxy_refreshes_total counter\n\
             # HELP ocituf_proxy_refresh_failures_total Refreshes that failed, per root of trust.\n\
             # TYPE ocituf_proxy_refresh_failures_total counter\n",
        );
        for slot in roots.slots() {
            let labels = format!(
                "root_of_trust=\"{}\",repository=\"{}\"",
                escape(&slot.entry.root_of_trust),
                escape(&slot.entry.repository.to_string())
            );
            let _ = writeln!(
                out,
                "ocituf_proxy_refreshes_total{{{labels}}} {}",
                get(&slot.refreshes)
            );
            let _ = writeln!(
                out,
                "ocituf_proxy_refresh_failures_total{{{labels}}} {}",
                get(&slot.refresh_failures)
            );
        }
        out
    }
}

/// A label value in the text format: backslash, quote and newline escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
