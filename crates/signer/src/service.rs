//! One worker per root of trust: each batch loads the verified state once, and when any
//! targets role has a new verified version (or the last publish is `resign-every` old)
//! signs ONE snapshot and ONE timestamp over all of it. Publishers that pushed while a
//! batch ran are covered by the next one: many role versions, one commit.
//!
//! A worker is the only writer of its root's snapshot and timestamp (the instance lock, or
//! the database lease, sees to that), so version numbers never fork. With a database
//! ([`crate::lease`]) a worker first takes its root's lease (or waits as a follower,
//! trying again every third of a lease), renews it at every turn, and checks it with its
//! fencing token right before every publish: fenced, it publishes nothing and goes back to
//! following. After a crash nothing
//! is carried over: the next batch reads the registry again, and a snapshot pushed without
//! its timestamp is simply never trusted (no timestamp names it) and is superseded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ocituf_oci::Digest;
use ocituf_resolver::{ErrorKind, RepositoryReference};
use ocituf_tuf::metadata::MetaFile;
use ocituf_writer::keys::SigningKey;
use ocituf_writer::online::{
    publish_changes, publish_state, sha256_meta, snapshot_meta, OnlineKeys,
};
use ocituf_writer::{Error, Found, MetaRepo, Pin, Result, State};
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::{Config, RootConfig};
use crate::fate::{judge, Rejection, Verdict};
use crate::leader::{fenced, follow, keep_renewing, renew, set_lead, Lead};
use crate::lease::Leases;
use crate::lock::InstanceLock;
use crate::metrics::{Counters, RootMetrics};

/// What a root of trust looks like to clients right now, as this signer last published it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootStatus {
    pub snapshot_version: Option<u64>,
    pub timestamp_version: Option<u64>,
    /// Each targets role and the version the published snapshot lists.
    pub roles: BTreeMap<String, u64>,
    /// Roles whose listed version had rivals of the same number saying something else when
    /// the state was loaded (writers raced, and their merge is yet to come).
    pub forked: BTreeSet<String>,
    pub timestamp_expires: Option<OffsetDateTime>,
    pub snapshot_expires: Option<OffsetDateTime>,
    /// How many snapshot/timestamp pairs this process published.
    pub publishes: u64,
    /// The last batch's failure, cleared by the next success.
    pub last_error: Option<String>,
    /// This instance writes the root's online roles now (always, with the lock file).
    pub leading: bool,
    /// The replica that leads, as last seen (`None`: without a database, or nobody yet).
    pub leader: Option<String>,
    /// The fencing token of the lease this instance holds (`None`: not leading, or no
    /// database).
    pub fencing_token: Option<i64>,
}

/// What became of a submitted role version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fate {
    /// Timestamp `timestamp_version` (visible to clients) lists `role` at `listed` > the
    /// version submitted (a later version holds every change confirmed at an earlier one:
    /// writers build on all rivals at the newest number, merged), or at the version
    /// submitted when no rival of that number said anything else. A rival that differs may
    /// be the one listed (the lowest digest) and lack the submitted change; the writers'
    /// merge that follows is waited for.
    Accepted { timestamp_version: u64, listed: u64 },
    /// Another version took the submitted one's place (a rival of that number that clients
    /// get instead, or a stale parent): build again on version `rebase_on`, the newest
    /// verified one of the role, and submit that.
    Conflict { rebase_on: u64, why: String },
    /// The version can never be published, and nothing was changed: `why` names the check
    /// that failed.
    Rejected { why: Rejection },
}

/// A verified submission waiting for the next batch: the version, and whether verified
/// rivals of its number said something else when it was judged (then only a later version
/// covers it, see [`Fate::Accepted`]).
#[derive(Debug, Clone)]
struct Change {
    found: Found,
    forked: bool,
}

pub(crate) struct Root {
    pub(crate) config: RootConfig,
    repo: MetaRepo,
    pin: Pin,
    /// Verified submissions the next batch publishes (role → its newest submitted version).
    pending: std::sync::Mutex<BTreeMap<String, Change>>,
    /// When the last submission was queued: walking every role waits for a quiet turn.
    last_submitted: std::sync::Mutex<Option<std::time::Instant>>,
    wake: Notify,
    pub(crate) status: watch::Sender<RootStatus>,
    counters: Counters,
}

/// A running signer: one worker task per root of trust.
pub struct Signer {
    roots: BTreeMap<String, Arc<Root>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    poll_interval: std::time::Duration,
    guard: Guard,
}

/// What keeps two signers from writing one root of trust at once.
enum Guard {
    /// One instance alone: the lock file (held, never read, until the signer drops).
    Lock(#[allow(dead_code)] InstanceLock),
    /// Several replicas: leases in PostgreSQL, one per root of trust.
    Leases(Arc<Leases>),
}

/// The online keys of one root, owned by its worker.
struct Keys {
    snapshot: SigningKey,
    timestamp: SigningKey,
}

impl Signer {
    /// Start as the configuration says: with `database-url`, connect to PostgreSQL (and
    /// create the lease tables) and share the roots of trust with the other replicas;
    /// without, [`Signer::start`] (the lock file).
    ///
    /// # Errors
    /// As [`Signer::start`]; the database cannot be reached or its tables created.
    pub async fn launch(config: &Config, registry: &ocituf_oci::RegistryOptions) -> Result<Self> {
        match &config.database {
            None => Self::start(config, registry),
            Some(db) => {
                let leases = Arc::new(Leases::connect(db, config.roots.len()).await?);
                Self::start_with(config, registry, Guard::Leases(leases))
            }
        }
    }

    /// Take the instance lock, read every root's keys, and start one worker per root.
    ///
    /// # Errors
    /// Another signer holds the lock; a key or repository in the configuration is unusable;
    /// the configuration names a database (use [`Signer::launch`]).
    pub fn start(config: &Config, registry: &ocituf_oci::RegistryOptions) -> Result<Self> {
        if config.database.is_some() {
            return Err(Error::new(
                ErrorKind::Config,
                "this configuration names a database: start the signer with Signer::launch",
            ));
        }
        let lock = InstanceLock::acquire(&config.lock_file)?;
        Self::start_with(config, registry, Guard::Lock(lock))
    }

    fn start_with(
        config: &Config,
        registry: &ocituf_oci::RegistryOptions,
        guard: Guard,
    ) -> Result<Self> {
        let leases = match &guard {
            Guard::Lock(_) => None,
            Guard::Leases(l) => Some(l.clone()),
        };
        let (shutdown, _) = watch::channel(false);
        let poll_interval = std::time::Duration::try_from(config.poll_interval)
            .unwrap_or(std::time::Duration::from_secs(2));
        let mut roots = BTreeMap::new();
        let mut tasks = Vec::new();
        for rc in &config.roots {
            let repo_ref = RepositoryReference::parse(&rc.repository).map_err(|e| {
                Error::wrap(
                    ErrorKind::Config,
                    format!("root of trust {:?}: bad repository", rc.name),
                    e,
                )
            })?;
            let repo = MetaRepo::open(&repo_ref, &rc.name, registry)?;
            let keys = Keys {
                snapshot: ocituf_writer::keys::load_signer(&rc.snapshot_key)?,
                timestamp: ocituf_writer::keys::load_signer(&rc.timestamp_key)?,
            };
            let root = Arc::new(Root {
                config: rc.clone(),
                repo,
                pin: Pin::Bytes(rc.root.clone()),
                pending: std::sync::Mutex::new(BTreeMap::new()),
                last_submitted: std::sync::Mutex::new(None),
                wake: Notify::new(),
                status: watch::channel(RootStatus {
                    leading: leases.is_none(),
                    ..RootStatus::default()
                })
                .0,
                counters: Counters::default(),
            });
            roots.insert(rc.name.clone(), root.clone());
            tasks.push(tokio::spawn(worker(
                root,
                Work {
                    keys,
                    poll: poll_interval,
                    leases: leases.clone(),
                },
                shutdown.subscribe(),
            )));
        }
        Ok(Self {
            roots,
            shutdown,
            tasks,
            poll_interval,
            guard,
        })
    }

    /// This replica's id in the lease table (`None`: no database, the lock file).
    pub fn replica_id(&self) -> Option<&str> {
        match &self.guard {
            Guard::Lock(_) => None,
            Guard::Leases(l) => Some(l.replica_id()),
        }
    }

    /// How long a lease lasts (`None`: no database).
    pub fn lease(&self) -> Option<std::time::Duration> {
        match &self.guard {
            Guard::Lock(_) => None,
            Guard::Leases(l) => Some(l.lease()),
        }
    }

    /// The names of the roots of trust served.
    pub fn roots(&self) -> impl Iterator<Item = &str> {
        self.roots.keys().map(String::as_str)
    }

    /// The configuration of root of trust `name` (`None`: not served here).
    pub fn root_config(&self, name: &str) -> Option<&RootConfig> {
        self.roots.get(name).map(|r| &r.config)
    }

    /// The counters of root of trust `name` for `/metrics` (`None`: not served here).
    pub fn metrics(&self, name: &str) -> Option<RootMetrics> {
        self.roots.get(name).map(|r| r.counters.read())
    }

    /// The status of root of trust `name` (`None`: not served here).
    pub fn status(&self, name: &str) -> Option<RootStatus> {
        self.roots.get(name).map(|r| r.status.borrow().clone())
    }

    /// A publisher pushed `version` of `role` in root of trust `name` (`digest`: the
    /// manifest it pushed, when it says): judge it from the registry as a client would
    /// (the artifacts claiming that version, its delegator's keys and threshold, its
    /// parent, rivals of its number), and when it is publishable, have the next batch
    /// publish it and wait until a published timestamp covers it, at most `timeout`.
    /// A conflict or a rejection is answered at once and changes nothing.
    ///
    /// # Errors
    /// A configuration error for a root of trust not served here; a network error on a
    /// replica that does not lead the root, when the registry fails while judging, or on a
    /// timeout (no timestamp covered the version in time: see `last_error` of the status).
    pub async fn submit(
        &self,
        name: &str,
        role: &str,
        version: u64,
        digest: Option<&Digest>,
        timeout: std::time::Duration,
    ) -> Result<Fate> {
        let root = self.roots.get(name).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!("root of trust {name:?} is not served by this signer"),
            )
        })?;
        {
            let st = root.status.borrow();
            if !st.leading {
                let who = st
                    .leader
                    .as_deref()
                    .map_or_else(|| "no replica yet".to_owned(), |l| format!("replica {l:?}"));
                return Err(Error::new(
                    ErrorKind::Network,
                    format!("this replica does not lead {name:?} ({who} does): submit to the leader, or retry"),
                ));
            }
        }
        let waiting = root.counters.wait();
        let started = std::time::Instant::now();
        let judged = tokio::time::timeout(
            timeout,
            judge(&root.repo, &root.pin, role, version, digest),
        )
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Network,
                format!("could not judge {role} version {version} of {name:?} within {timeout:?}: the registry is slow"),
            )
        })??;
        let forked = match judged {
            Verdict::Rejected(why) => return Ok(Fate::Rejected { why }),
            Verdict::Conflict { rebase_on, why } => return Ok(Fate::Conflict { rebase_on, why }),
            Verdict::Valid { found, forked } => {
                if let Ok(mut pending) = root.pending.lock() {
                    let newer = pending
                        .get(role)
                        .is_none_or(|c| c.found.version < found.version);
                    if newer {
                        pending.insert(role.to_owned(), Change { found, forked });
                    }
                }
                if let Ok(mut t) = root.last_submitted.lock() {
                    *t = Some(std::time::Instant::now());
                }
                forked
            }
        };
        let mut rx = root.status.subscribe();
        root.wake.notify_one();
        let covered = |s: &RootStatus| match (s.timestamp_version, s.roles.get(role)) {
            (Some(ts), Some(&listed))
                if listed > version
                    || (listed == version && !forked && !s.forked.contains(role)) =>
            {
                Some(Fate::Accepted {
                    timestamp_version: ts,
                    listed,
                })
            }
            _ => None,
        };
        let wait = async {
            loop {
                if let Some(f) = covered(&rx.borrow_and_update()) {
                    return Ok(f);
                }
                if rx.changed().await.is_err() {
                    return Err(Error::new(
                        ErrorKind::Network,
                        format!("the signer of {name:?} stopped"),
                    ));
                }
            }
        };
        let left = timeout.saturating_sub(started.elapsed());
        let Ok(fate) = tokio::time::timeout(left, wait).await else {
            drop(waiting);
            let last = root.status.borrow().last_error.clone();
            let why = last.map_or_else(
                || " (it verifies: the next batches publish it)".to_owned(),
                |e| format!(" (last batch failed: {e})"),
            );
            return Err(Error::new(
                ErrorKind::Network,
                format!(
                    "no timestamp of {name:?} covered {role} version {version} within {timeout:?}{why}"
                ),
            ));
        };
        if fate.is_ok() {
            root.counters.covered(started.elapsed());
        }
        fate
    }

    /// How often each worker looks for new versions by itself.
    pub fn poll_interval(&self) -> std::time::Duration {
        self.poll_interval
    }

    /// Stop every worker after its current batch and release the lock.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// What the last successful publish covered, to decide whether the next batch must sign.
struct Last {
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

/// What a worker owns besides its root.
struct Work {
    keys: Keys,
    poll: std::time::Duration,
    leases: Option<Arc<Leases>>,
}

async fn worker(root: Arc<Root>, work: Work, mut shutdown: watch::Receiver<bool>) {
    let mut last: Option<Last> = None;
    let mut lead = if work.leases.is_some() {
        Lead::Follower
    } else {
        Lead::Alone
    };
    // With leases, every turn (renewal, or a follower's try) comes within a third of one.
    let turn = work
        .leases
        .as_ref()
        .map_or(work.poll, |l| work.poll.min(l.lease() / 3));
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Some(leases) = &work.leases {
            lead = match lead {
                Lead::Follower => follow(&root, leases).await,
                Lead::Leader { token } => renew(&root, leases, token).await,
                Lead::Alone => Lead::Alone,
            };
            if matches!(lead, Lead::Follower) {
                // Another replica publishes meanwhile: the next leadership starts afresh.
                last = None;
                tokio::select! {
                    () = tokio::time::sleep(leases.lease() / 3) => {}
                    _ = shutdown.changed() => break,
                }
                continue;
            }
        }
        let result = match (&work.leases, lead) {
            (Some(leases), Lead::Leader { token }) => {
                // A batch may outlast a lease (a slow registry): renew beside it, and stop
                // it (even mid-publish) the moment the lease is lost.
                tokio::select! {
                    r = batch(&root, &work, &mut last, Some((leases, token))) => r,
                    why = keep_renewing(leases, &root.config.name, token) => {
                        fenced(&root, leases, token, &why);
                        Ok(Outcome::Fenced)
                    }
                }
            }
            _ => batch(&root, &work, &mut last, None).await,
        };
        let failed = result.is_err();
        match result {
            Ok(Outcome::Fenced) => lead = Lead::Follower,
            Ok(Outcome::Done) => root.status.send_modify(|s| s.last_error = None),
            Err(e) => root
                .status
                .send_modify(|s| s.last_error = Some(e.to_string())),
        }
        // After a failure, wait before retrying even when woken, so a broken registry is
        // not hammered by every submission.
        let wake = async {
            if failed {
                tokio::time::sleep(turn).await;
            } else {
                tokio::select! {
                    () = root.wake.notified() => {}
                    () = tokio::time::sleep(turn) => {}
                }
            }
        };
        tokio::select! {
            () = wake => {}
            _ = shutdown.changed() => break,
        }
    }
    // Stopped: hand the root over at once rather than after the lease runs out.
    if let (Some(leases), Lead::Leader { token }) = (&work.leases, lead) {
        let _ = leases.release(&root.config.name, token).await;
        set_lead(&root, Lead::Follower, None);
    }
}

/// How a batch ended when it did not fail.
enum Outcome {
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
/// ([`State::is_complete`] is false) is only re-signed, over its previous snapshot.
async fn batch(
    root: &Root,
    work: &Work,
    last: &mut Option<Last>,
    fence: Option<(&Leases, i64)>,
) -> Result<Outcome> {
    let (repo, pin) = (&root.repo, &root.pin);
    let now = OffsetDateTime::now_utc();
    let changes = take_pending(root);
    if let (false, Some(l)) = (changes.is_empty(), last.as_mut()) {
        return publish_submitted(root, work, l, changes, fence).await;
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
        return publish_submitted(root, work, l, BTreeMap::new(), fence).await;
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
    let state = State::load(repo, Some(pin)).await?;
    let (meta, _) = snapshot_meta(&state);
    if !state.is_complete() {
        // From now on only submissions and re-signing (docs/signer.md "Big roots of trust").
        let mut l = Last {
            meta,
            at: now,
            complete: false,
            walked,
        };
        let outcome = publish_submitted(root, work, &mut l, changes, fence).await;
        *last = Some(l);
        return outcome;
    }
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

/// Publish the submitted `changes` over the previous snapshot (none: re-sign it), and
/// record them in `last` and the status.
async fn publish_submitted(
    root: &Root,
    work: &Work,
    last: &mut Last,
    mut changes: BTreeMap<String, Change>,
    fence: Option<(&Leases, i64)>,
) -> Result<Outcome> {
    // A version the published snapshot already lists (or a newer one) is covered: listing
    // it again would be a rollback, or a rival of the same number replacing the listed one.
    {
        let st = root.status.borrow();
        changes.retain(|role, c| st.roles.get(role).is_none_or(|&v| v < c.found.version));
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
    Ok(Outcome::Done)
}
