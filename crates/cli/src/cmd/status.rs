//! `ocituf status REPO`: what an operator looks at first.

use ocituf_resolver::RepositoryReference;
use ocituf_tuf::metadata::{Role, Root, Snapshot, Targets, Timestamp};
use serde_json::json;
use time::OffsetDateTime;

use super::Context;
use crate::cli::StatusArgs;
use crate::failure::fail;
use crate::when::parse_duration;
use ocituf_writer::{valid_signatures, Authority, State};

fn rfc3339(t: OffsetDateTime) -> String {
    ocituf_tuf::metadata::expires_format::format(t).unwrap_or_else(|_| t.to_string())
}

fn short(id: &str) -> &str {
    &id[..id.len().min(16)]
}

pub async fn run(ctx: &Context, a: &StatusArgs) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = super::write::open_repo(ctx, &repo_ref, &a.repo.name)?;
    let warn_within = parse_duration(&a.warn_within).ok_or_else(|| {
        fail(
            ocituf_resolver::ErrorKind::Config,
            format!(
                "--warn-within {:?} is not a duration (7d, 12h)",
                a.warn_within
            ),
        )
    })?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let now = OffsetDateTime::now_utc();
    let seed = a
        .seed
        .unwrap_or_else(|| now.unix_timestamp().unsigned_abs());
    // Bounded by default: every explicitly delegated role, and a seeded sample of each
    // hash-bin delegation's bins (the snapshot, one blob, still gives every bin's version).
    let state = if a.all {
        State::load(&repo, pin.as_ref()).await?
    } else {
        State::load_sampled(&repo, pin.as_ref(), a.sample, seed).await?
    };
    let root: &Root = &state.root;
    let ts = repo
        .newest("timestamp", &Authority::of_top_level(root, "timestamp")?)
        .await?;
    let snap = repo
        .newest("snapshot", &Authority::of_top_level(root, "snapshot")?)
        .await?;
    let snapshot = match &snap {
        Some(f) => Some(Snapshot::from_signed(&f.envelope.signed)?),
        None => None,
    };
    let timestamp = match &ts {
        Some(f) => Some(Timestamp::from_signed(&f.envelope.signed)?),
        None => None,
    };

    let mut warnings = Vec::new();
    let mut check_expiry = |role: &str, version: u64, expires: OffsetDateTime| {
        if expires <= now {
            warnings.push(format!(
                "{role} version {version} EXPIRED at {}: clients refuse it",
                rfc3339(expires)
            ));
        } else if expires - now
            <= if matches!(role, "timestamp" | "snapshot") {
                // Online roles are short-lived by design: warn only when re-signing is late.
                warn_within.min(time::Duration::hours(6))
            } else {
                warn_within
            }
        {
            warnings.push(format!(
                "{role} version {version} expires at {} (within {})",
                rfc3339(expires),
                a.warn_within
            ));
        }
    };

    let mut roles = Vec::new();
    for name in ["root", "timestamp", "snapshot", "targets"] {
        let rk = root.role(name)?;
        let (version, expires) = match name {
            "root" => (Some(root.version), Some(root.expires)),
            "timestamp" => (
                timestamp.as_ref().map(|t| t.version),
                timestamp.as_ref().map(|t| t.expires),
            ),
            "snapshot" => (
                snapshot.as_ref().map(|t| t.version),
                snapshot.as_ref().map(|t| t.expires),
            ),
            _ => match state.targets_of("targets") {
                Some(t) => (Some(t.version), Some(t.expires)),
                None => (None, None),
            },
        };
        if let (Some(v), Some(e)) = (version, expires) {
            check_expiry(name, v, e);
        }
        roles.push(json!({
            "role": name,
            "version": version,
            "expires": expires.map(rfc3339),
            "threshold": rk.threshold,
            "keyids": rk.keyids.iter().map(ocituf_tuf::crypto::KeyId::as_str).collect::<Vec<_>>(),
        }));
    }

    // What the snapshot lists: with a Merkle tree, proven per role read (bounded).
    let listed = state.published(&repo, snapshot.as_ref()).await?;
    let mut delegated = Vec::new();
    let mut total_targets = 0usize;
    let mut unpublished = Vec::new();
    for name in &state.order {
        let t: Option<&Targets> = state.targets_of(name);
        let count = t.as_ref().map_or(0, |t| t.targets.len());
        total_targets += count;
        let published = listed.versions.get(name).copied();
        if let Some(t) = &t {
            if published.is_none_or(|p| p < t.version) {
                unpublished.push(format!("{name} version {}", t.version));
            }
            if name != "targets" {
                check_expiry(name, t.version, t.expires);
            }
        }
        if name == "targets" {
            continue;
        }
        let auth = &state.targets[name].1;
        delegated.push(json!({
            "role": name,
            "version": t.as_ref().map(|t| t.version),
            "published_version": published,
            "expires": t.as_ref().map(|t| rfc3339(t.expires)),
            "threshold": auth.threshold,
            "keyids": auth.keyids.iter().map(ocituf_tuf::crypto::KeyId::as_str).collect::<Vec<_>>(),
            "targets": count,
        }));
    }

    let bins = bins_read(&state, snapshot.as_ref(), seed);
    // Names a role lists where the delegation search never looks for them: clients ignore
    // them; the next write to the role removes them.
    let strays: Vec<_> = state
        .stray_targets()
        .into_iter()
        .map(|s| json!({"role": s.role, "name": s.name}))
        .collect();

    let mut pending = Vec::new();
    for (version, env) in repo.pending_roots(root.version).await? {
        let Ok(new_root) = Root::from_signed(&env.signed) else {
            continue;
        };
        let old = Authority::of_top_level(root, "root")?;
        let new = Authority::of_top_level(&new_root, "root")?;
        pending.push(json!({
            "version": version,
            "content": ocituf_writer::root::content_digest(&env)?,
            "signed_by_old_keys": valid_signatures(&env, &old.keys, &old.keyids),
            "old_threshold": old.threshold,
            "signed_by_new_keys": valid_signatures(&env, &new.keys, &new.keyids),
            "new_threshold": new.threshold,
        }));
    }

    let pending_targets: Vec<_> = ocituf_writer::cosign::pending_versions(&repo, &state)
        .await?
        .into_iter()
        .map(|p| {
            json!({
                "role": p.role,
                "version": p.version,
                "content": p.content,
                "signatures": p.signatures,
                "threshold": p.threshold,
            })
        })
        .collect();

    if a.output.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "repository": repo_ref.to_string(),
                "root_of_trust": a.repo.name,
                "roles": roles,
                "delegated_roles": delegated,
                "targets": total_targets,
                "hash_bins": bins,
                "snapshot_merkle_roles": listed.merkle_roles,
                "unpublished": unpublished,
                "pending_roots": pending,
                "pending_targets": pending_targets,
                "stray_targets": strays,
                "warnings": warnings,
            }))?
        );
        return Ok(());
    }
    outln!("root of trust {:?} in {repo_ref}", a.repo.name);
    outln!(
        "{:<12} {:>8}  {:<22} {:>9}  keys",
        "role",
        "version",
        "expires",
        "threshold"
    );
    for r in roles.iter().chain(delegated.iter()) {
        let keys: Vec<&str> = r["keyids"]
            .as_array()
            .map(|a| a.iter().filter_map(|k| k.as_str()).map(short).collect())
            .unwrap_or_default();
        outln!(
            "{:<12} {:>8}  {:<22} {:>9}  {}",
            r["role"].as_str().unwrap_or(""),
            r["version"]
                .as_u64()
                .map_or("-".to_owned(), |v| v.to_string()),
            r["expires"].as_str().unwrap_or("-"),
            format!("{}/{}", r["threshold"], keys.len()),
            keys.join(" ")
        );
    }
    outln!(
        "targets: {total_targets} (in the {} targets roles read)",
        state.order.len()
    );
    if let Some(n) = listed.merkle_roles {
        outln!(
            "snapshot: a Merkle tree over {n} delegated roles (their published versions above are proven from it)"
        );
    }
    for b in &bins {
        outln!("{}", bins_line(b));
    }
    for u in &unpublished {
        outln!("not yet published: {u} (run `ocituf publish`)");
    }
    for p in &pending {
        outln!(
            "pending root version {} (content {}): signed by {}/{} old and {}/{} new root keys (`ocituf root sign --expect {}`)",
            p["version"], p["content"].as_str().unwrap_or("?"), p["signed_by_old_keys"], p["old_threshold"],
            p["signed_by_new_keys"], p["new_threshold"], p["content"].as_str().unwrap_or("?")
        );
    }
    for p in &pending_targets {
        let role = p["role"].as_str().unwrap_or("?");
        let content = p["content"].as_str().unwrap_or("?");
        outln!(
            "pending {role} version {} (content {content}): {}/{} signatures (`ocituf cosign --role {role} --expect {content}`)",
            p["version"], p["signatures"], p["threshold"]
        );
    }
    for w in &warnings {
        outln!("warning: {w}");
    }
    for s in &strays {
        outln!(
            "warning: role {} lists {} but clients never look for it there (they ignore it); the next `ocituf sign` into that role removes it, and signing the image again puts the name where clients look",
            s["role"],
            s["name"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

/// [`ocituf_writer::state::BinsSummary`] of each hash-bin delegation, as JSON.
fn bins_read(state: &State, snapshot: Option<&Snapshot>, seed: u64) -> Vec<serde_json::Value> {
    state
        .bins_summaries(snapshot)
        .into_iter()
        .map(|b| {
            let sampled = b.read < b.count;
            json!({
                "delegator": b.delegator,
                "bins": b.count,
                "read": b.read,
                "sampled": sampled,
                "seed": sampled.then_some(seed),
                "published": b.published,
                "targets_in_read": b.targets_in_read,
                "targets_estimate": b.targets_estimate,
            })
        })
        .collect()
}

/// The text line for one entry of [`bins_read`].
fn bins_line(b: &serde_json::Value) -> String {
    let delegator = b["delegator"].as_str().unwrap_or("?");
    let listed = b["published"].as_u64().map_or_else(
        || "the snapshot's Merkle tree holds their versions".to_owned(),
        |n| format!("the snapshot lists {n} bins"),
    );
    if b["sampled"].as_bool() == Some(true) {
        format!(
            "hash bins of {delegator}: sampled {} of {} bins (seed {}; `--seed` reads the same \
             ones, `--all` reads every bin): {} targets in them, about {} in all; {listed}; \
             expiry, versions and pending versions above are of the sampled bins only",
            b["read"], b["bins"], b["seed"], b["targets_in_read"], b["targets_estimate"]
        )
    } else {
        format!(
            "hash bins of {delegator}: all {} bins read; {listed}",
            b["bins"]
        )
    }
}
