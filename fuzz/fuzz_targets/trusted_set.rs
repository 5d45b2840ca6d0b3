//! The trusted set fed a sequence of files, as the updater feeds it: valid files of a real
//! repository (two versions of every role, a rotated root, an expired timestamp), those
//! files with one byte changed, and arbitrary bytes, in any order, at any clock.
//!
//! Checked after every step:
//! - no panic, whatever the order or content;
//! - a refused file changes no trusted version (nothing half-applied);
//! - no trusted version ever goes down (rollback);
//! - whatever is trusted was signed by the repository's keys: its signed content is one of
//!   the repository's own files (a change the fuzzer makes can only ever be refused).
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ocituf_tuf::crypto::{PrivateKey, Signer};
use ocituf_tuf::metadata::DelegatedRole;
use ocituf_tuf::metadata::{Role, TargetFile};
use ocituf_tuf::trusted::Origin;
use ocituf_tuf::{Error, Repository, TrustedSet};
use time::{Duration, OffsetDateTime};

/// The fixed "now" of the repository; steps move the clock from it.
fn epoch() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a valid timestamp")
}

struct Pool {
    root: Vec<u8>,
    files: Vec<Vec<u8>>,
    /// Canonical `signed` of every file the repository's keys signed.
    signed: BTreeSet<Vec<u8>>,
}

fn signed_of(bytes: &[u8]) -> Option<Vec<u8>> {
    let envelope = ocituf_tuf::metadata::Envelope::parse("pool", bytes).ok()?;
    envelope.signed_bytes().ok()
}

fn key(seed: u8) -> PrivateKey {
    PrivateKey::ed25519_from_seed([seed; 32]).expect("an ed25519 key from a seed")
}

/// Two versions of a repository with a delegated role, a root rotation and an expired
/// timestamp, signed with fixed keys.
fn build() -> Pool {
    let expires = epoch() + Duration::days(30);
    let (root_key, online, targets_key, team, new_root) = (key(1), key(2), key(3), key(4), key(5));
    let mut repo = Repository::new(expires);
    repo.add_signer_key("root", &root_key).expect("root key");
    repo.add_signer_key("timestamp", &online)
        .expect("timestamp key");
    repo.add_signer_key("snapshot", &online)
        .expect("snapshot key");
    repo.add_signer_key("targets", &targets_key)
        .expect("targets key");
    let team_id = team.key_id().clone();
    let team_pub = team.public_key().clone();
    repo.delegate(
        "targets",
        DelegatedRole::with_paths("team", vec![team_id.clone()], 1, &["acme/*"]),
        &[(team_id, team_pub)],
    )
    .expect("delegate");
    let mut files = Vec::new();
    let root = repo.sign_root(&[&root_key]).expect("sign root");
    for version in 0..2u8 {
        let file = TargetFile::from_data(&[version], &["sha256"]).expect("target file");
        repo.add_target("team", &format!("acme/app:{version}"), file)
            .expect("add target");
        if version > 0 {
            for role in ["team", "targets", "snapshot", "timestamp"] {
                repo.bump(role, expires).expect("bump");
            }
        }
        files.push(repo.sign_targets("team", &[&team]).expect("sign team"));
        files.push(
            repo.sign_targets("targets", &[&targets_key])
                .expect("sign targets"),
        );
        files.push(repo.sign_snapshot(&[&online]).expect("sign snapshot"));
        files.push(repo.sign_timestamp(&[&online]).expect("sign timestamp"));
    }
    // A timestamp that expired before the epoch, with a newer version.
    repo.bump("timestamp", epoch() - Duration::days(1))
        .expect("bump");
    files.push(repo.sign_timestamp(&[&online]).expect("sign timestamp"));
    // Root 2, rotated to a new root key, signed by the old and the new.
    repo.bump("root", expires).expect("bump root");
    repo.revoke_key("root", root_key.key_id()).expect("revoke");
    repo.add_signer_key("root", &new_root)
        .expect("new root key");
    files.push(
        repo.sign_root(&[&root_key, &new_root])
            .expect("sign root 2"),
    );
    // Root 3 signed by the new key only (valid) and root 3 signed by the old only (not).
    repo.bump("root", expires).expect("bump root");
    files.push(repo.sign_root(&[&new_root]).expect("sign root 3"));
    let mut signed: BTreeSet<Vec<u8>> = files.iter().filter_map(|f| signed_of(f)).collect();
    signed.insert(signed_of(&root).expect("root parses"));
    files.push(
        repo.sign_root(&[&root_key])
            .expect("sign root 3 by the old key"),
    );
    Pool {
        root,
        files,
        signed,
    }
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(build)
}

#[derive(Arbitrary, Debug)]
enum Source {
    Pool(u8),
    Mutated { file: u8, at: u16, byte: u8 },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Step {
    Root(Source),
    Timestamp(Source),
    Snapshot(Source, bool),
    Targets(Source),
    Team(Source),
    /// Move the clock by this many hours (either way).
    Clock(i16),
}

fn bytes(source: &Source) -> Vec<u8> {
    let files = &pool().files;
    match source {
        Source::Pool(i) => files[usize::from(*i) % files.len()].clone(),
        Source::Mutated { file, at, byte } => {
            let mut f = files[usize::from(*file) % files.len()].clone();
            let at = usize::from(*at) % f.len();
            f[at] = *byte;
            f
        }
        Source::Raw(raw) => raw.clone(),
    }
}

/// Trusted versions: root, timestamp, snapshot, targets, team.
fn versions(set: &TrustedSet) -> [Option<u64>; 5] {
    [
        Some(set.root().version),
        set.timestamp().map(|t| t.version),
        set.snapshot().map(|s| s.version),
        set.targets().map(|t| t.version),
        set.delegated_targets("team").map(|t| t.version),
    ]
}

fn check_signed<R: Role>(role: Option<&R>) {
    if let Some(role) = role {
        let value = role.to_signed().expect("a trusted role serialises");
        let canonical = ocituf_tuf::cjson::to_canonical(&value).expect("canonical form");
        assert!(
            pool().signed.contains(&canonical),
            "the trusted set holds a {} nobody signed",
            R::TYPE
        );
    }
}

fuzz_target!(|steps: Vec<Step>| {
    let pool = pool();
    let mut set = TrustedSet::new(&pool.root).expect("the pinned root loads");
    let mut now = epoch();
    for step in steps.iter().take(64) {
        let before = versions(&set);
        let result = match step {
            Step::Root(s) => set.update_root(&bytes(s)).map(|_| ()),
            Step::Timestamp(s) => set.update_timestamp(&bytes(s), now).map(|_| ()),
            Step::Snapshot(s, cached) => {
                let origin = if *cached {
                    Origin::Cache
                } else {
                    Origin::Remote
                };
                set.update_snapshot(&bytes(s), now, origin)
            }
            Step::Targets(s) => set.update_targets(&bytes(s), now),
            Step::Team(s) => set.update_delegated_targets(&bytes(s), "team", "targets", now),
            Step::Clock(hours) => {
                now += Duration::hours(i64::from(*hours));
                Ok(())
            }
        };
        let after = versions(&set);
        if let Err(err) = &result {
            // TUF 5.4.5 / 5.5.6 (and python-tuf): an expired timestamp, or an expired or
            // not-named snapshot, is refused but kept as the rollback reference for the next
            // one (docs of TrustedSet::update_timestamp / update_snapshot). Nothing else may
            // change.
            let kept = match (step, err) {
                (Step::Timestamp(_), Error::Expired { .. }) => Some(1),
                (Step::Snapshot(..), Error::Expired { .. } | Error::VersionMismatch { .. }) => {
                    Some(2)
                }
                _ => None,
            };
            let mut unchanged = after;
            if let Some(i) = kept {
                unchanged[i] = before[i];
            }
            assert_eq!(
                before, unchanged,
                "a refused {step:?} ({err}) changed the trusted set"
            );
        }
        for (b, a) in before.iter().zip(after.iter()) {
            if let (Some(b), Some(a)) = (b, a) {
                assert!(
                    a >= b,
                    "a trusted version went down: {before:?} -> {after:?}"
                );
            }
        }
        check_signed(Some(set.root()));
        check_signed(set.timestamp());
        check_signed(set.snapshot());
        check_signed(set.targets());
        check_signed(set.delegated_targets("team"));
    }
});
