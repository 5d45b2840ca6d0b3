//! One worker per root of trust, and the submissions it takes. A submission is judged from
//! the registry first ([`crate::fate`]); a publishable one is queued, and the worker's
//! next batch (`batch.rs`) signs ONE snapshot and ONE timestamp over every version
//! queued (or found by walking every role, or when the last publish is `resign-every`
//! old). Publishers that submitted while a batch ran are covered by the next one: many
//! role versions, one commit.
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
use ocituf_writer::keys::SigningKey;
use ocituf_writer::{Error, Found, MetaRepo, Pin, Result};
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::batch::{batch, Last, Outcome};
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
pub(crate) struct Change {
    pub(crate) found: Found,
    pub(crate) forked: bool,
}

pub(crate) struct Root {
    pub(crate) config: RootConfig,
    pub(crate) repo: MetaRepo,
    pub(crate) pin: Pin,
    /// Verified submissions the next batch publishes (role → its newest submitted version).
    pub(crate) pending: std::sync::Mutex<BTreeMap<String, Change>>,
    /// When the last submission was queued: walking every role waits for a quiet turn.
    pub(crate) last_submitted: std::sync::Mutex<Option<std::time::Instant>>,
    wake: Notify,
    pub(crate) status: watch::Sender<RootStatus>,
    pub(crate) counters: Counters,
    /// Delegation reads shared by submissions judged at once.
    reads: crate::fate::SharedReads,
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
pub(crate) struct Keys {
    pub(crate) snapshot: SigningKey,
    pub(crate) timestamp: SigningKey,
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
                reads: crate::fate::SharedReads::default(),
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
            judge(&root.repo, &root.pin, &root.reads, role, version, digest),
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

/// What a worker owns besides its root.
pub(crate) struct Work {
    pub(crate) keys: Keys,
    pub(crate) poll: std::time::Duration,
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
