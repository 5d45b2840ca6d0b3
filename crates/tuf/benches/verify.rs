//! What verification costs: a snapshot checked by the trusted set (parse, `_type` and schema,
//! canonical bytes of `signed`, threshold of signatures), a target looked up through 1,024
//! succinct hash bins, and beside them the primitive, ed25519-dalek's `verify_strict` over
//! the same canonical bytes. docs/benchmarks.md records the figures and how to run this.
//!
//! Metadata is built here with serde_json, canonical JSON and ed25519-dalek directly (not the
//! editing API), with fixed keys and a fixed `now`, so the bytes are the same on every run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ed25519_dalek::{Signer as _, SigningKey};
use ocituf_tuf::cjson;
use ocituf_tuf::trusted::{Origin, SearchStep, TargetSearch, TrustedSet};
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
const EXPIRES: &str = "2031-01-01T00:00:00Z";
const LOOKUP_PATH: &str = "acme/app:1.4";

/// A fixed ed25519 key: (keyid, signing key, hex public key).
fn key(seed: u8) -> (String, SigningKey, String) {
    let sk = SigningKey::from_bytes(&[seed; 32]);
    let public = hex::encode(sk.verifying_key().as_bytes());
    (hex::encode([seed; 32]), sk, public)
}

fn public_key(public: &str) -> Value {
    json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": public}})
}

/// `{"signed": signed, "signatures": [...]}` signed by `signers`, as canonical JSON bytes.
fn sign(signed: &Value, signers: &[&(String, SigningKey, String)]) -> Vec<u8> {
    let msg = cjson::to_canonical(signed).unwrap();
    let signatures: Vec<Value> = signers
        .iter()
        .map(|(id, sk, _)| json!({"keyid": id, "sig": hex::encode(sk.sign(&msg).to_bytes())}))
        .collect();
    cjson::to_canonical(&json!({"signed": signed, "signatures": signatures})).unwrap()
}

struct Repo {
    root: Vec<u8>,
    timestamp: Vec<u8>,
    snapshot: Vec<u8>,
    targets: Vec<u8>,
    bins: Vec<(String, Vec<u8>)>,
    /// The canonical bytes of the snapshot's `signed` and its first signature (for the
    /// primitive alone).
    snapshot_msg: Vec<u8>,
    snapshot_sig: ed25519_dalek::Signature,
    snapshot_key: ed25519_dalek::VerifyingKey,
}

/// A repository whose snapshot is signed by `snapshot_sigs` keys (threshold the same) and,
/// with `bit_length` > 0, whose targets delegate to `2^bit_length` succinct bins that the
/// snapshot lists.
fn repo(snapshot_sigs: u8, bit_length: u32) -> Repo {
    let root_key = key(1);
    let timestamp_key = key(2);
    let targets_key = key(3);
    let bin_key = key(4);
    let snapshot_keys: Vec<_> = (0..snapshot_sigs).map(|i| key(10 + i)).collect();
    let mut keys = serde_json::Map::new();
    for k in [&root_key, &timestamp_key, &targets_key]
        .into_iter()
        .chain(&snapshot_keys)
    {
        keys.insert(k.0.clone(), public_key(&k.2));
    }
    let ids = |ks: &[&(String, SigningKey, String)]| -> Vec<String> {
        ks.iter().map(|k| k.0.clone()).collect()
    };
    let snapshot_refs: Vec<_> = snapshot_keys.iter().collect();
    let root = json!({
        "_type": "root", "spec_version": "1.0.31", "version": 1, "expires": EXPIRES,
        "consistent_snapshot": true, "keys": keys,
        "roles": {
            "root": {"keyids": ids(&[&root_key]), "threshold": 1},
            "timestamp": {"keyids": ids(&[&timestamp_key]), "threshold": 1},
            "snapshot": {"keyids": ids(&snapshot_refs), "threshold": snapshot_sigs},
            "targets": {"keyids": ids(&[&targets_key]), "threshold": 1},
        }
    });

    let mut targets = json!({
        "_type": "targets", "spec_version": "1.0.31", "version": 1, "expires": EXPIRES,
        "targets": {}
    });
    let mut meta = serde_json::Map::new();
    meta.insert("targets.json".to_owned(), json!({"version": 1}));
    let mut bins = Vec::new();
    if bit_length > 0 {
        targets["delegations"] = json!({
            "keys": {bin_key.0.clone(): public_key(&bin_key.2)},
            "succinct_roles": {
                "keyids": [bin_key.0.clone()], "threshold": 1,
                "bit_length": bit_length, "name_prefix": "bin"
            }
        });
        let width = bit_length.div_ceil(4) as usize;
        for bin in 0..(1u32 << bit_length) {
            let name = format!("bin-{bin:0width$x}");
            meta.insert(format!("{name}.json"), json!({"version": 1}));
            bins.push(name);
        }
    }
    let snapshot = json!({
        "_type": "snapshot", "spec_version": "1.0.31", "version": 1, "expires": EXPIRES,
        "meta": meta
    });
    let timestamp = json!({
        "_type": "timestamp", "spec_version": "1.0.31", "version": 1, "expires": EXPIRES,
        "meta": {"snapshot.json": {"version": 1}}
    });
    let snapshot_msg = cjson::to_canonical(&snapshot).unwrap();
    let bin_files = bins
        .into_iter()
        .map(|name| {
            // Only the bin the path hashes to is ever consulted, so every bin may list it.
            let signed = json!({
                "_type": "targets", "spec_version": "1.0.31", "version": 1, "expires": EXPIRES,
                "targets": {LOOKUP_PATH: {
                    "length": 528,
                    "hashes": {"sha256": "41".repeat(32)}
                }}
            });
            let bytes = sign(&signed, &[&bin_key]);
            (name, bytes)
        })
        .collect();
    Repo {
        root: sign(&root, &[&root_key]),
        timestamp: sign(&timestamp, &[&timestamp_key]),
        snapshot: sign(&snapshot, &snapshot_refs),
        targets: sign(&targets, &[&targets_key]),
        bins: bin_files,
        snapshot_sig: snapshot_keys[0].1.sign(&snapshot_msg),
        snapshot_key: snapshot_keys[0].1.verifying_key(),
        snapshot_msg,
    }
}

fn with_timestamp(r: &Repo) -> TrustedSet {
    let mut set = TrustedSet::new(&r.root).unwrap();
    set.update_timestamp(&r.timestamp, NOW).unwrap();
    set
}

fn snapshot(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot");
    for (name, r) in [
        ("ocituf_verify/top_level/1_sig", repo(1, 0)),
        ("ocituf_verify/top_level/3_sigs", repo(3, 0)),
        ("ocituf_verify/1024_bins/1_sig", repo(1, 10)),
    ] {
        let set = with_timestamp(&r);
        g.bench_function(name, |b| {
            b.iter_batched(
                || set.clone(),
                |mut s| {
                    s.update_snapshot(black_box(&r.snapshot), NOW, Origin::Remote)
                        .unwrap();
                    s
                },
                BatchSize::SmallInput,
            );
        });
    }
    let r = repo(1, 0);
    g.bench_function("ed25519_dalek_verify_strict/top_level", |b| {
        b.iter(|| {
            r.snapshot_key
                .verify_strict(black_box(&r.snapshot_msg), black_box(&r.snapshot_sig))
                .unwrap();
        });
    });
    g.finish();
}

fn delegation(c: &mut Criterion) {
    let r = repo(1, 10);
    let mut set = with_timestamp(&r);
    set.update_snapshot(&r.snapshot, NOW, Origin::Remote)
        .unwrap();
    set.update_targets(&r.targets, NOW).unwrap();
    let path = LOOKUP_PATH;
    // Load the one bin the path hashes to, as the updater would.
    let mut search = TargetSearch::new(path, 32);
    let bin = match search.step(&mut set).unwrap() {
        SearchStep::Load { role, .. } => role,
        other => panic!("expected a bin to load, got {other:?}"),
    };
    let bytes = &r.bins.iter().find(|(n, _)| *n == bin).unwrap().1;
    set.update_delegated_targets(bytes, &bin, "targets", NOW)
        .unwrap();

    let mut g = c.benchmark_group("delegation");
    g.bench_function("succinct_1024_bins/lookup", |b| {
        b.iter(|| {
            let mut search = TargetSearch::new(black_box(path), 32);
            let step = search.step(&mut set).unwrap();
            assert!(matches!(step, SearchStep::Found(_)), "{step:?}");
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // Short, so that `cargo test --all-targets` (one pass) and a bench run stay quick.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = snapshot, delegation
}
criterion_main!(benches);
