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

use ocituf_resolver::{ErrorKind, RepositoryReference};
use ocituf_tuf::metadata::MetaFile;
use ocituf_writer::keys::SigningKey;
use ocituf_writer::online::{publish_state, snapshot_meta, OnlineKeys};
use ocituf_writer::{Error, MetaRepo, Pin, Result, State};
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::{Config, RootConfig};
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
pub enum Fate {
    /// Timestamp `timestamp_version` (visible to clients) lists `role` at `listed` > the
    /// version submitted (a later version holds every change confirmed at an earlier one:
    /// writers build on all rivals at the newest number, merged), or at the version
    /// submitted when no rival of that number said anything else. A rival that differs may
    /// be the one listed (the lowest digest) and lack the submitted change; the writers'
    /// merge that follows is waited for.
    Accepted { timestamp_version: u64, listed: u64 },
}

pub(crate) struct Root {
    pub(crate) config: RootConfig,
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
                    repo,
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

    /// A publisher pushed `version` of `role` in root of trust `name`: start a batch soon
    /// and wait until a published timestamp covers it, at most `timeout`.
    ///
    /// # Errors
    /// A configuration error for a root of trust not served here; a timeout (kind
    /// `Network`) when no timestamp covered the version in time: the version is not
    /// verifiable (wrong key, not pushed) or the registry is failing (see `last_error` of
    /// the status).
    pub async fn submit(
        &self,
        name: &str,
        role: &str,
        version: u64,
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
        let mut rx = root.status.subscribe();
        root.wake.notify_one();
        let covered = |s: &RootStatus| match (s.timestamp_version, s.roles.get(role)) {
            (Some(ts), Some(&listed))
                if listed > version || (listed == version && !s.forked.contains(role)) =>
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
        let Ok(fate) = tokio::time::timeout(timeout, wait).await else {
            drop(waiting);
            let last = root.status.borrow().last_error.clone();
            let why = last.map_or_else(
                || " (is it pushed, and signed by the keys its delegator names?)".to_owned(),
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
}

/// What a worker owns besides its root.
struct Work {
    repo: MetaRepo,
    keys: Keys,
    poll: std::time::Duration,
    leases: Option<Arc<Leases>>,
}

async fn worker(root: Arc<Root>, work: Work, mut shutdown: watch::Receiver<bool>) {
    let pin = Pin::Bytes(root.config.root.clone());
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
                    r = batch(&root, &work, &pin, &mut last, Some((leases, token))) => r,
                    why = keep_renewing(leases, &root.config.name, token) => {
                        fenced(&root, leases, token, &why);
                        Ok(Outcome::Fenced)
                    }
                }
            }
            _ => batch(&root, &work, &pin, &mut last, None).await,
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

/// One batch: load the verified state; publish when it differs from what was last
/// published or re-signing is due.
async fn batch(
    root: &Root,
    work: &Work,
    pin: &Pin,
    last: &mut Option<Last>,
    fence: Option<(&Leases, i64)>,
) -> Result<Outcome> {
    let (repo, keys) = (&work.repo, &work.keys);
    let state = State::load(repo, Some(pin)).await?;
    let (meta, _) = snapshot_meta(&state);
    let now = OffsetDateTime::now_utc();
    let due = match last {
        None => true,
        Some(l) => l.meta != meta || now - l.at >= root.config.resign_every,
    };
    if !due {
        return Ok(Outcome::Done);
    }
    let whole = |t: OffsetDateTime| t.replace_nanosecond(0).unwrap_or(t);
    let online = OnlineKeys {
        snapshot: keys.snapshot.as_ref(),
        timestamp: keys.timestamp.as_ref(),
        snapshot_expires: whole(now + root.config.snapshot_expires),
        timestamp_expires: whole(now + root.config.timestamp_expires),
    };
    // The fencing check, right before the pushes: another replica may have taken the lease
    // while the state was loading (docs/signer.md: what fencing guarantees and what not).
    if let Some((leases, token)) = fence {
        match leases.check(&root.config.name, token).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                fenced(root, leases, token, "the lease is no longer this replica's");
                return Ok(Outcome::Fenced);
            }
            Err(e) => {
                fenced(root, leases, token, &format!("{e}"));
                return Ok(Outcome::Fenced);
            }
        }
    }
    let started = std::time::Instant::now();
    let p = publish_state(repo, &state, &online).await?;
    root.counters.published(started.elapsed());
    *last = Some(Last { meta, at: now });
    root.status.send_modify(|s| {
        s.snapshot_version = Some(p.snapshot_version);
        s.timestamp_version = Some(p.timestamp_version);
        s.roles = p.roles;
        s.forked.clone_from(&state.forked);
        s.snapshot_expires = Some(online.snapshot_expires);
        s.timestamp_expires = Some(online.timestamp_expires);
        s.publishes += 1;
    });
    // Retention (docs/oci-mapping.md §8) after the publish, never failing it.
    crate::retention::after_publish(repo, &root.config, &root.counters).await;
    Ok(Outcome::Done)
}
