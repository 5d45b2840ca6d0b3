//! One worker per root of trust: each batch loads the verified state once, and when any
//! targets role has a new verified version (or the last publish is `resign-every` old)
//! signs ONE snapshot and ONE timestamp over all of it. Publishers that pushed while a
//! batch ran are covered by the next one: many role versions, one commit.
//!
//! A worker is the only writer of its root's snapshot and timestamp (the instance lock, or
//! the database lease, sees to that), so version numbers never fork. After a crash nothing
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

struct Root {
    config: RootConfig,
    wake: Notify,
    status: watch::Sender<RootStatus>,
    counters: Counters,
}

/// A running signer: one worker task per root of trust.
pub struct Signer {
    roots: BTreeMap<String, Arc<Root>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    poll_interval: std::time::Duration,
    _lock: InstanceLock,
}

/// The online keys of one root, owned by its worker.
struct Keys {
    snapshot: SigningKey,
    timestamp: SigningKey,
}

impl Signer {
    /// Take the instance lock, read every root's keys, and start one worker per root.
    ///
    /// # Errors
    /// Another signer holds the lock; a key or repository in the configuration is unusable.
    pub fn start(config: &Config, registry: &ocituf_oci::RegistryOptions) -> Result<Self> {
        let lock = InstanceLock::acquire(&config.lock_file)?;
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
                status: watch::channel(RootStatus::default()).0,
                counters: Counters::default(),
            });
            roots.insert(rc.name.clone(), root.clone());
            tasks.push(tokio::spawn(worker(
                root,
                repo,
                keys,
                poll_interval,
                shutdown.subscribe(),
            )));
        }
        Ok(Self {
            roots,
            shutdown,
            tasks,
            poll_interval,
            _lock: lock,
        })
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

async fn worker(
    root: Arc<Root>,
    repo: MetaRepo,
    keys: Keys,
    poll: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let pin = Pin::Bytes(root.config.root.clone());
    let mut last: Option<Last> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let result = batch(&root, &repo, &pin, &keys, &mut last).await;
        let failed = result.is_err();
        root.status.send_modify(|s| {
            s.last_error = result.err().map(|e| e.to_string());
        });
        // After a failure, wait a poll interval before retrying even when woken, so a
        // broken registry is not hammered by every submission.
        let wake = async {
            if failed {
                tokio::time::sleep(poll).await;
            } else {
                tokio::select! {
                    () = root.wake.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
        };
        tokio::select! {
            () = wake => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One batch: load the verified state; publish when it differs from what was last
/// published or re-signing is due.
async fn batch(
    root: &Root,
    repo: &MetaRepo,
    pin: &Pin,
    keys: &Keys,
    last: &mut Option<Last>,
) -> Result<()> {
    let state = State::load(repo, Some(pin)).await?;
    let (meta, _) = snapshot_meta(&state);
    let now = OffsetDateTime::now_utc();
    let due = match last {
        None => true,
        Some(l) => l.meta != meta || now - l.at >= root.config.resign_every,
    };
    if !due {
        return Ok(());
    }
    let whole = |t: OffsetDateTime| t.replace_nanosecond(0).unwrap_or(t);
    let online = OnlineKeys {
        snapshot: keys.snapshot.as_ref(),
        timestamp: keys.timestamp.as_ref(),
        snapshot_expires: whole(now + root.config.snapshot_expires),
        timestamp_expires: whole(now + root.config.timestamp_expires),
    };
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
    Ok(())
}
