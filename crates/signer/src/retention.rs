//! Retention after each publish: the signer deletes the role versions that the retention
//! rule of docs/oci-mapping.md §8 lets go, so a root of trust that re-signs every few hours
//! does not grow without bound. The rule itself is [`ocituf_oci::Publisher::prune_online`]
//! (the newest `keep-timestamps` timestamps and `keep-snapshots` snapshots, and every
//! snapshot a kept timestamp names; never a root or a targets-role version, see [`prune`]);
//! this module only runs it at the right moment and reports what it did.
//!
//! What: timestamps and snapshots only (see [`prune`]). When: right after a successful
//! publish, inside the batch, so a fenced leader (whose batch
//! is stopped where it is) deletes nothing, and the one writer of the online roles is also
//! the one that prunes them. A prune that fails never fails the publish: the new timestamp
//! is out and clients see it; the failure is logged, counted
//! (`ocituf_signer_prune_failures_total`) and the next publish prunes again.
//!
//! Fallback indexes stay consistent because every deletion goes through
//! [`ocituf_oci::ArtifactStore::delete_manifest`], which on a registry without the referrers
//! API deletes the manifest first (distribution then drops its tags, the unique referrer tag
//! included) and then rewrites the `sha256-<anchor>` index without it, keeping every entry
//! other writers added meanwhile. An index left listing a deleted manifest (a failure between
//! the two steps) is repaired by the next write to it: distribution refuses an index naming
//! a manifest it lacks, and the writer drops what is gone.
//!
//! Not pruned yet: the node manifests of snapshot Merkle trees (`ocituf-node-<hex>`,
//! docs/oci-mapping.md §11).

use ocituf_oci::publish::PruneReport;
use ocituf_oci::{Publisher, Retention};
use ocituf_resolver::ErrorKind;
use ocituf_writer::{Error, MetaRepo, Result};

use crate::config::RootConfig;
use crate::metrics::Counters;

/// Prune the root of trust in `repo` by `retention`: timestamps and snapshots only
/// ([`Publisher::prune_online`]: two listings, whatever the number of targets roles).
/// Targets-role versions never: publishers build on them concurrently, and a pruned rival
/// that a publisher's parent names gets its next version rejected as a bad parent (seen in
/// the 16-publisher test).
///
/// # Errors
/// A registry failure while listing, reading or deleting (kind `Network`); whatever was
/// deleted before it stays deleted, and a later prune carries on.
pub async fn prune(repo: &MetaRepo, retention: &Retention) -> Result<PruneReport> {
    Publisher::new(&repo.store, repo.name.clone())
        .prune_online(retention)
        .await
        .map_err(|e| {
            Error::wrap(
                ErrorKind::Network,
                format!(
                    "could not prune {:?} by its retention rule ({})",
                    repo.name.as_str(),
                    repo.location
                ),
                e,
            )
        })
}

/// What the batch calls after a successful publish: prune by the root's retention, log and
/// count the outcome, and never fail (the publish stands whatever happens here).
pub async fn after_publish(repo: &MetaRepo, root: &RootConfig, counters: &Counters) {
    match prune(repo, &root.retention).await {
        Ok(report) => {
            counters.pruned(report.deleted.len() as u64);
            if !report.deleted.is_empty() {
                tracing::info!(
                    root_of_trust = %root.name,
                    deleted = report.deleted.len(),
                    kept = report.kept.len(),
                    "pruned by the retention rule"
                );
            }
        }
        Err(e) => {
            counters.prune_failed();
            tracing::warn!(
                root_of_trust = %root.name,
                error = %chain(&e),
                "prune failed (the publish stands; the next one prunes again)"
            );
        }
    }
}

/// `e` and its causes, `: `-separated, for one log line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}
