//! One batch of a root's worker: what to publish and how. Verified submissions are
//! published as they are ([`publish_changes`]: the previous snapshot and the changed roles,
//! whatever the number of roles); without them, a root of trust small enough for the full
//! walk is walked ([`State::load`]) for versions pushed without a submission; a root too big
//! for it is only re-signed over its previous snapshot (docs/signer.md "Batches").

use std::collections::BTreeMap;

use ocituf_resolver::ErrorKind;
use ocituf_tuf::metadata::MetaFile;
use ocituf_writer::online::{
    publish_changes, publish_state, sha256_meta, snapshot_meta, OnlineKeys,
};
use ocituf_writer::{Found, Result, State};
use time::OffsetDateTime;

use crate::leader::fenced;
use crate::lease::Leases;
use crate::service::{Change, Root, Work};

/// What the last successful publish covered, to decide whether the next batch must sign.
pub(crate) struct Last {
    meta: BTreeMap<String, MetaFile>,
    at: OffsetDateTime,
    /// The full walk read every role (false: a root of trust too big for it, published
    /// from submissions only).
    complete: bool,
    /// When every role was last walked.
    walked: std::time::Instant,
}

/// While submissions keep coming, every role is walked (for versions pushed without one)
/// at most once in this many turns: a walk of many bins takes seconds, and submissions
/// queued behind it wait.
const WALK_EVERY_TURNS_WHILE_BUSY: u32 = 10;

/// How a batch ended when it did not fail.
pub(crate) enum Outcome {
    /// Published, or nothing was due.
    Done,
    /// The fencing check before the publish failed: nothing was published.
    Fenced,
}

/// One batch. With verified submissions waiting, publish exactly those
/// ([`publish_changes`]: the previous snapshot and the changed roles only, whatever the
/// number of roles). Otherwise, for a root of trust whose full walk is complete, load the
/// verified state and publish when it differs from what was last published (versions
/// pushed without a submission) or re-signing is due; a root too big for the full walk
/// ([`State::load_if_bounded`] gives none) is only re-signed, over its previous snapshot.
pub(crate) async fn batch(
    root: &Root,
    work: &Work,
    last: &mut Option<Last>,
    fence: Option<(&Leases, i64)>,
) -> Result<Outcome> {
    let (repo, pin) = (&root.repo, &root.pin);
    let now = OffsetDateTime::now_utc();
    let changes = take_pending(root);
    if let (false, Some(l)) = (changes.is_empty(), last.as_mut()) {
        return publish_submitted(root, work, l, changes, false, fence).await;
    }
    let resign_due = last
        .as_ref()
        .is_none_or(|l| now - l.at >= root.config.resign_every);
    if last.as_ref().is_some_and(|l| !l.complete) {
        // Too big to walk every batch: re-sign over the previous snapshot when due.
        let Some(l) = last.as_mut() else {
            return Ok(Outcome::Done);
        };
        if !resign_due {
            return Ok(Outcome::Done);
        }
        return publish_submitted(root, work, l, BTreeMap::new(), true, fence).await;
    }
    if let Some(l) = last.as_ref() {
        let busy = root
            .last_submitted
            .lock()
            .ok()
            .and_then(|t| *t)
            .is_some_and(|t| t.elapsed() < work.poll);
        if busy && !resign_due && l.walked.elapsed() < work.poll * WALK_EVERY_TURNS_WHILE_BUSY {
            return Ok(Outcome::Done);
        }
    }
    let walked = std::time::Instant::now();
    let Some(state) = State::load_if_bounded(repo, Some(pin)).await? else {
        // From now on only submissions and re-signing (docs/signer.md "Big roots of trust").
        let mut l = Last {
            meta: last.as_ref().map(|l| l.meta.clone()).unwrap_or_default(),
            at: now,
            complete: false,
            walked,
        };
        let outcome = publish_submitted(root, work, &mut l, changes, resign_due, fence).await;
        *last = Some(l);
        return outcome;
    };
    let (meta, _) = snapshot_meta(&state);
    let due = match last.as_mut() {
        None => true,
        Some(l) => {
            l.walked = walked;
            l.meta != meta || resign_due
        }
    };
    if !due {
        return Ok(Outcome::Done);
    }
    let online = online_keys(root, work, now);
    if let Some(o) = check_fence(root, fence).await {
        return Ok(o);
    }
    let started = std::time::Instant::now();
    let p = publish_state(repo, &state, &online).await?;
    root.counters.published(started.elapsed());
    *last = Some(Last {
        meta,
        at: now,
        complete: true,
        walked,
    });
    root.status.send_modify(|s| {
        s.snapshot_version = Some(p.snapshot_version);
        s.timestamp_version = Some(p.timestamp_version);
        s.roles = p.roles;
        s.forked.clone_from(&state.forked);
        s.snapshot_expires = Some(online.snapshot_expires);
        s.timestamp_expires = Some(online.timestamp_expires);
        s.publishes += 1;
    });
    // After the status: submissions covered by this timestamp are answered first.
    crate::retention::after_publish(&root.repo, &root.config, &root.counters).await;
    Ok(Outcome::Done)
}

/// The verified submissions waiting, taken for this batch.
fn take_pending(root: &Root) -> BTreeMap<String, Change> {
    root.pending
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default()
}

/// Put back what a batch failed to publish for a reason that may pass (the registry),
/// unless a newer submission of the role came meanwhile.
fn put_back(root: &Root, changes: BTreeMap<String, Change>) {
    if let Ok(mut pending) = root.pending.lock() {
        for (role, c) in changes {
            pending.entry(role).or_insert(c);
        }
    }
}

fn online_keys<'a>(root: &Root, work: &'a Work, now: OffsetDateTime) -> OnlineKeys<'a> {
    let whole = |t: OffsetDateTime| t.replace_nanosecond(0).unwrap_or(t);
    OnlineKeys {
        snapshot: work.keys.snapshot.as_ref(),
        timestamp: work.keys.timestamp.as_ref(),
        snapshot_expires: whole(now + root.config.snapshot_expires),
        timestamp_expires: whole(now + root.config.timestamp_expires),
    }
}

/// The fencing check, right before the pushes: another replica may have taken the lease
/// while the state was loading (docs/signer.md: what fencing guarantees and what not).
/// `Some(Fenced)`: publish nothing.
async fn check_fence(root: &Root, fence: Option<(&Leases, i64)>) -> Option<Outcome> {
    let (leases, token) = fence?;
    match leases.check(&root.config.name, token).await {
        Ok(Some(_)) => None,
        Ok(None) => {
            fenced(root, leases, token, "the lease is no longer this replica's");
            Some(Outcome::Fenced)
        }
        Err(e) => {
            fenced(root, leases, token, &format!("{e}"));
            Some(Outcome::Fenced)
        }
    }
}

/// Publish the submitted `changes` over the previous snapshot, and record them in `last`
/// and the status. With nothing left to publish, re-sign only when `resign` says so.
async fn publish_submitted(
    root: &Root,
    work: &Work,
    last: &mut Last,
    mut changes: BTreeMap<String, Change>,
    resign: bool,
    fence: Option<(&Leases, i64)>,
) -> Result<Outcome> {
    // A version the published snapshot already lists (or a newer one) is covered: listing
    // it again would be a rollback, or a rival of the same number replacing the listed one.
    {
        let st = root.status.borrow();
        changes.retain(|role, c| st.roles.get(role).is_none_or(|&v| v < c.found.version));
    }
    if changes.is_empty() && !resign {
        // Every submission was covered already (by a walk): a timestamp now says nothing new.
        return Ok(Outcome::Done);
    }
    let now = OffsetDateTime::now_utc();
    let online = online_keys(root, work, now);
    if let Some(o) = check_fence(root, fence).await {
        put_back(root, changes);
        return Ok(o);
    }
    let found: BTreeMap<String, Found> = changes
        .iter()
        .map(|(r, c)| (r.clone(), c.found.clone()))
        .collect();
    let started = std::time::Instant::now();
    let p = match publish_changes(&root.repo, Some(&root.pin), &online, &found).await {
        Ok(p) => p,
        Err(e) => {
            if e.kind() == ErrorKind::Network {
                put_back(root, changes);
            }
            return Err(e);
        }
    };
    root.counters.published(started.elapsed());
    for (role, f) in &found {
        last.meta
            .insert(format!("{role}.json"), sha256_meta(f.version, &f.bytes));
    }
    last.at = now;
    root.status.send_modify(|s| {
        s.snapshot_version = Some(p.snapshot_version);
        s.timestamp_version = Some(p.timestamp_version);
        for (role, c) in &changes {
            s.roles.insert(role.clone(), c.found.version);
            if c.forked {
                s.forked.insert(role.clone());
            } else {
                s.forked.remove(role);
            }
        }
        s.snapshot_expires = Some(online.snapshot_expires);
        s.timestamp_expires = Some(online.timestamp_expires);
        s.publishes += 1;
    });
    crate::retention::after_publish(&root.repo, &root.config, &root.counters).await;
    Ok(Outcome::Done)
}
