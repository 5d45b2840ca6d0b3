//! The OCI referrers tag schema (distribution spec 1.1 "Referrers Tag Schema"), read and
//! written without losing entries when several writers update one index at once.
//!
//! Distribution 2.8 has no conditional tag writes (no `If-Match`), so an index update is a
//! read-modify-write race: the last PUT of the `sha256-<subject hex>` tag wins and may drop
//! entries other writers added after it read. ocituf makes that loss repairable and repaired:
//!
//! 1. **A unique tag per referrer.** A referrer pushed in fallback mode is also tagged
//!    `sha256-<subject hex>.<first 32 hex of its own digest>` (104 characters, within the
//!    128 allowed) *before* the index is touched. The tag keeps the referrer safe from
//!    `garbage-collect --delete-untagged` (which removes manifests reachable only through an
//!    index) and makes it discoverable from `/tags/list` (sorted, so `last=sha256-<subject
//!    hex>` starts the listing at the subject's tags; distribution 2.8 ignores `n` and `last`
//!    and answers every tag of the repository, 2.5 MB at 29,000 tags).
//! 2. **The index is a derived aggregate.** A writer reads the index, writes it with its entry
//!    added, waits a short random time, and reads the index and the unique tags; it writes the
//!    union of all it knows and repeats until one read shows every entry it knows of (its own,
//!    those it ever saw in the index, those the tags name), for at most `fallback_max_rounds`
//!    rounds. Why this loses nothing: take the last PUT of the index; its writer's next read
//!    sees that PUT and the tags of every referrer tagged before it, and would have written
//!    again had anything been missing. A referrer tagged after that PUT has a writer whose own
//!    PUT would come later — unless another writer's read already included it, in which case
//!    that PUT came before the last one and the last writer's check covered it. The argument
//!    assumes a read after a write sees it (true of one distribution instance on a filesystem;
//!    a registry on eventually consistent storage narrows it to "repaired by the next writer or
//!    reconcile"). A writer that gives up (`FallbackContention`) leaves its referrer stored and
//!    tagged, so the next writer or a reconcile lists it.
//! 3. **Repair on demand.** [`super::FallbackReads::MergeUniqueTags`] merges the tags into
//!    what `referrers()` returns; [`super::RegistryRepo::reconcile_referrers`] rewrites the
//!    index. Needed only after a writer crashed between tagging and indexing, or after a
//!    client that writes no unique tags (ORAS) raced an ocituf writer.
//!
//! Deleting a referrer deletes its manifest by digest first — distribution then removes
//! every tag pointing at it, the unique tag included, and tags cannot be deleted on their
//! own on 2.8 — and then rewrites the index without it. A writer that still carries the
//! deleted entry has its PUT refused (distribution rejects an index listing an unknown
//! manifest), checks each entry with HEAD, and drops the ones gone.
//!
//! Superseded index versions are left untagged (garbage collection removes them); ocituf
//! does not delete them, so a concurrent reader holding one never sees it vanish (ORAS 1.2
//! does not delete them either).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use reqwest::StatusCode;

use super::error::RegistryError;
use super::http::{random_duration, read_body, strip_query};
use super::manifest::ManifestFacts;
use super::referrers::{descriptor_from_json, descriptor_to_json, next_link, parse_index};
use super::repo::{FallbackReads, RegistryRepo};
use super::INDEX_MEDIA_TYPE;
use crate::store::{Descriptor, Digest, ManifestRef};

/// The tag-schema index tag of `subject`: `sha256-<hex>`.
pub fn index_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// The unique tag ocituf gives a referrer of `subject` in fallback mode:
/// `sha256-<subject hex>.<first 32 hex digits of the referrer's digest>`.
pub fn referrer_tag(subject: &Digest, referrer: &Digest) -> String {
    format!("{}.{}", index_tag(subject), &referrer.hex()[..32])
}

/// Annotation ocituf puts on its fallback indexes: the subject, so that two subjects with
/// the same (e.g. empty) referrers list never share an index digest.
pub const SUBJECT_ANNOTATION: &str = "io.ocituf.referrers.subject";

fn entry_digest(v: &serde_json::Value) -> Option<&str> {
    v.get("digest")?.as_str()
}

async fn read_index(
    repo: &RegistryRepo,
    subject: &Digest,
) -> Result<Vec<serde_json::Value>, RegistryError> {
    let tag = index_tag(subject);
    let limit = repo.client.inner.opts.index_max_len;
    match repo.fetch_manifest(&ManifestRef::Tag(&tag), limit).await? {
        None => Ok(Vec::new()),
        Some(m) => parse_index(&m.bytes, &tag),
    }
}

/// The unique referrer tags of `subject`, from `/tags/list` (paginated by `n`/`last` and
/// `Link`, capped at `tags_max_pages`).
async fn referrer_tags(
    repo: &RegistryRepo,
    subject: &Digest,
) -> Result<Vec<String>, RegistryError> {
    let opts = &repo.client.inner.opts;
    let start = index_tag(subject);
    let prefix = format!("{start}.");
    let mut url = repo.url("tags/list");
    url.query_pairs_mut()
        .append_pair("n", "1000")
        .append_pair("last", &start);
    let mut out = Vec::new();
    for _ in 0..opts.tags_max_pages {
        let mut resp = repo.get(url.clone(), Some("application/json")).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(out);
        }
        if !resp.status().is_success() {
            return Err(repo
                .client
                .status_error(&reqwest::Method::GET, &url, resp)
                .await);
        }
        let next = next_link(&resp, &url)?;
        let shown = strip_query(&url);
        let body = read_body(&mut resp, opts.index_max_len, &shown).await?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|source| RegistryError::InvalidJson {
                url: shown.clone(),
                source,
            })?;
        let tags: Vec<&str> = match v.get("tags") {
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|t| t.as_str()).collect(),
            _ => Vec::new(),
        };
        out.extend(
            tags.iter()
                .filter(|t| t.starts_with(&prefix))
                .map(|t| (*t).to_owned()),
        );
        // Tags are listed in lexical order: past the subject's range, stop early.
        let sorted = tags.windows(2).all(|w| w[0] <= w[1]);
        let past = tags
            .last()
            .is_some_and(|l| *l > prefix.as_str() && !l.starts_with(&prefix));
        match next {
            Some(n) if !(sorted && past) => url = n,
            _ => return Ok(out),
        }
    }
    Err(RegistryError::ReferrersLimit {
        subject: subject.clone(),
        what: "tags list pages",
        max: u64::from(opts.tags_max_pages),
    })
}

/// Resolve unique tags not yet covered by `known` into entries (one GET each). Tags whose
/// manifest is gone, unusable, or not a referrer of `subject` are ignored.
async fn resolve_tags(
    repo: &RegistryRepo,
    subject: &Digest,
    tags: &[String],
    known: &mut BTreeMap<String, serde_json::Value>,
    seen: &mut HashSet<String>,
    gone: &BTreeSet<String>,
) -> Result<(), RegistryError> {
    let prefix_len = index_tag(subject).len() + 1;
    let limit = repo.client.inner.opts.index_max_len;
    // One GET per unknown tag: bounded like a referrers list.
    let max = repo.client.inner.opts.referrers_max_entries;
    if tags.len() as u64 > max {
        return Err(RegistryError::ReferrersLimit {
            subject: subject.clone(),
            what: "unique referrer tags",
            max,
        });
    }
    for tag in tags {
        if seen.contains(tag) {
            continue;
        }
        let short = &tag[prefix_len..];
        if known.keys().any(|k| {
            k.strip_prefix("sha256:")
                .is_some_and(|h| h.starts_with(short))
        }) {
            seen.insert(tag.clone());
            continue;
        }
        let m = match repo.fetch_manifest(&ManifestRef::Tag(tag), limit).await {
            Ok(Some(m)) => m,
            Ok(None) | Err(RegistryError::BodyTooLarge { .. } | RegistryError::InvalidTag(_)) => {
                seen.insert(tag.clone());
                continue;
            }
            Err(e) => return Err(e),
        };
        seen.insert(tag.clone());
        let Ok(facts) = ManifestFacts::parse(&m.bytes) else {
            continue;
        };
        if facts.subject.as_ref() != Some(subject) || gone.contains(m.digest.as_str()) {
            continue;
        }
        let desc = facts.descriptor(&m.media_type, m.digest.clone(), m.bytes.len() as u64);
        known.insert(m.digest.as_str().to_owned(), descriptor_to_json(&desc));
    }
    Ok(())
}

fn index_bytes(subject: &Digest, entries: &[serde_json::Value]) -> Vec<u8> {
    let v = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": entries,
        "annotations": { SUBJECT_ANNOTATION: subject.as_str() },
    });
    // Serializing a Value cannot fail.
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Bring the index of `subject` to hold `add`, drop `remove`, and keep every other entry it
/// ever listed or a unique tag names (the algorithm of the module docs).
pub(crate) async fn update(
    repo: &RegistryRepo,
    subject: &Digest,
    add: Option<Descriptor>,
    remove: Option<&Digest>,
) -> Result<(), RegistryError> {
    let opts = &repo.client.inner.opts;
    let tag = index_tag(subject);
    let mut known: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut gone: BTreeSet<String> = BTreeSet::new();
    let mut seen_tags = HashSet::new();
    if let Some(d) = &add {
        known.insert(d.digest.as_str().to_owned(), descriptor_to_json(d));
    }
    if let Some(d) = remove {
        gone.insert(d.as_str().to_owned());
    }
    let repairing = add.is_none() && remove.is_none();
    let mut pushed = false;
    for round in 0..opts.fallback_max_rounds {
        let current = read_index(repo, subject).await?;
        let listed: BTreeSet<String> = current
            .iter()
            .filter_map(|e| entry_digest(e).map(str::to_owned))
            .collect();
        for e in &current {
            if let Some(d) = entry_digest(e) {
                if !gone.contains(d) {
                    known.entry(d.to_owned()).or_insert_with(|| e.clone());
                }
            }
        }
        // The unique tags are listed only in a read that follows one of our PUTs (the check
        // the argument above rests on), or when repairing: a write that finds its own entry
        // listed at once puts nothing and can drop nothing. On distribution 2.8 a tags list
        // answers every tag of the repository whatever `n` says, so it is the costly read.
        if pushed || repairing {
            let tags = referrer_tags(repo, subject).await?;
            resolve_tags(repo, subject, &tags, &mut known, &mut seen_tags, &gone).await?;
        }
        let missing: Vec<serde_json::Value> = known
            .iter()
            .filter(|(d, _)| !listed.contains(*d) && !gone.contains(*d))
            .map(|(_, e)| e.clone())
            .collect();
        let stale = listed.iter().any(|d| gone.contains(d));
        if missing.is_empty() && !stale {
            tracing::debug!(%subject, round, "fallback index holds every known referrer");
            return Ok(());
        }
        let mut entries: Vec<serde_json::Value> = current
            .into_iter()
            .filter(|e| entry_digest(e).is_none_or(|d| !gone.contains(d)))
            .collect();
        entries.extend(missing);
        let bytes = index_bytes(subject, &entries);
        let digest = Digest::of(&bytes);
        match repo
            .push_manifest(INDEX_MEDIA_TYPE, &bytes, &digest, &ManifestRef::Tag(&tag))
            .await
        {
            Ok(_) => pushed = true,
            // Distribution refuses an index that lists a manifest it does not have: one was
            // deleted meanwhile. Find which, forget them, and go again.
            Err(
                refusal @ RegistryError::Status {
                    status: 400 | 404, ..
                },
            ) => {
                let mut dropped = false;
                for e in &entries {
                    let Some(d) = entry_digest(e).and_then(|d| Digest::parse(d).ok()) else {
                        continue;
                    };
                    if !manifest_exists(repo, &d).await? {
                        gone.insert(d.as_str().to_owned());
                        known.remove(d.as_str());
                        dropped = true;
                    }
                }
                if !dropped {
                    // Not a missing manifest. Distribution 2.8 also answers 400 DIGEST_INVALID
                    // to a tag PUT that races another writer of the same tag (seen with eight
                    // concurrent signers under load): back off and go again, and report the
                    // refusal itself only when the rounds run out.
                    if round + 1 == opts.fallback_max_rounds {
                        return Err(refusal);
                    }
                    tracing::debug!(%subject, round, error = %refusal, "fallback index write refused, retrying");
                    let (lo, hi) = opts.fallback_settle;
                    tokio::time::sleep(lo + random_duration(hi.saturating_sub(lo))).await;
                }
                continue;
            }
            Err(e) => return Err(e),
        }
        let (lo, hi) = opts.fallback_settle;
        tokio::time::sleep(lo + random_duration(hi.saturating_sub(lo))).await;
    }
    Err(RegistryError::FallbackContention {
        subject: subject.clone(),
        rounds: opts.fallback_max_rounds,
    })
}

async fn manifest_exists(repo: &RegistryRepo, digest: &Digest) -> Result<bool, RegistryError> {
    use crate::store::ArtifactStore as _;
    match repo.head_manifest(ManifestRef::Digest(digest)).await {
        Ok(found) => Ok(found.is_some()),
        Err(crate::Error::Registry(e)) => Err(e),
        Err(e) => Err(RegistryError::InvalidResponse {
            url: repo.location(),
            reason: e.to_string(),
        }),
    }
}

/// Referrers of `subject` from the fallback index (and the unique tags when asked).
pub(crate) async fn list(
    repo: &RegistryRepo,
    subject: &Digest,
    artifact_type: Option<&str>,
    reads: FallbackReads,
) -> Result<Vec<Descriptor>, RegistryError> {
    let opts = &repo.client.inner.opts;
    let current = read_index(repo, subject).await?;
    let mut known: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut order = Vec::new();
    for e in current {
        if let Some(d) = entry_digest(&e).map(str::to_owned) {
            if let std::collections::btree_map::Entry::Vacant(v) = known.entry(d.clone()) {
                order.push(d);
                v.insert(e);
            }
        }
    }
    if reads == FallbackReads::MergeUniqueTags {
        let tags = referrer_tags(repo, subject).await?;
        let before: BTreeSet<String> = known.keys().cloned().collect();
        resolve_tags(
            repo,
            subject,
            &tags,
            &mut known,
            &mut HashSet::new(),
            &BTreeSet::new(),
        )
        .await?;
        order.extend(known.keys().filter(|k| !before.contains(*k)).cloned());
    }
    let mut out = Vec::new();
    for d in order {
        let Some(desc) = known.get(&d).and_then(descriptor_from_json) else {
            continue;
        };
        if artifact_type.is_some_and(|t| desc.artifact_type.as_deref() != Some(t)) {
            continue;
        }
        out.push(desc);
        if out.len() as u64 > opts.referrers_max_entries {
            return Err(RegistryError::ReferrersLimit {
                subject: subject.clone(),
                what: "entries",
                max: opts.referrers_max_entries,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_fit_the_grammar() {
        let s = Digest::of(b"subject");
        let r = Digest::of(b"referrer");
        let t = referrer_tag(&s, &r);
        assert_eq!(t.len(), 7 + 64 + 1 + 32);
        assert!(super::super::valid_tag(&t));
        assert!(super::super::valid_tag(&index_tag(&s)));
        assert!(t.starts_with(&index_tag(&s)));
    }
}
