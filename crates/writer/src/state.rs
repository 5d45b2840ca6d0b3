//! The verified state a writer builds on, and the delegation search (TUF 5.6.7) that decides
//! which role each target name belongs in.

use std::collections::{BTreeMap, BTreeSet};

use ocituf_tuf::metadata::{Role as _, Root, Snapshot, Targets};

use crate::authority::Authority;
use crate::error::{fail, Error, ErrorKind, Result, ResultExt as _};
use crate::pin::Pin;
use crate::repo::{Found, MetaRepo};

/// The verified state a writer builds on: the newest root and the newest version of every
/// targets role reachable through delegations, in pre-order.
pub struct State {
    pub root: Root,
    pub root_found: Found,
    /// Role name → (its newest verified version, the authority that signs it).
    pub targets: BTreeMap<String, (Option<Found>, Authority)>,
    /// Roles in delegation pre-order (targets first).
    pub order: Vec<String>,
    /// Roles whose newest version number is claimed by verified versions that say different
    /// things (writers raced; the lowest digest is the one in `targets`, docs/oci-mapping.md
    /// §6). A rival may hold a change the chosen one lacks until a writer merges them into
    /// the next version, so a change confirmed at that number may not be the chosen one's.
    pub forked: BTreeSet<String>,
    /// The parsed content of each role in `targets` that has a version (parsed once: the
    /// delegation search runs once per target name).
    parsed: BTreeMap<String, Targets>,
    /// The succinct hash-bin delegations met, with the bins read of each.
    pub bins: Vec<BinsRead>,
    complete: bool,
}

/// One succinct hash-bin delegation and the bins a state read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinsRead {
    /// The role that delegates to the bins.
    pub delegator: String,
    /// How many bins it delegates to.
    pub count: u64,
    /// The bins read ([`State::load`]: every one up to its cap; [`State::load_sampled`]: a
    /// sample), in bin order.
    pub sampled: Vec<String>,
}

/// The version that the newest snapshot lists for each role of a [`State`]
/// ([`State::published`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Role → version listed (roles never published are absent).
    pub versions: BTreeMap<String, u64>,
    /// With a snapshot Merkle tree: how many delegated roles it holds.
    pub merkle_roles: Option<u64>,
}

/// What a state knows of one hash-bin delegation ([`State::bins_summaries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinsSummary {
    pub delegator: String,
    /// Bins delegated to, and bins read.
    pub count: u64,
    pub read: u64,
    /// Bins the snapshot lists (published at least once): one blob gives every bin's
    /// version. `None` with a snapshot Merkle tree, where counting them would read every
    /// node ([`Published::merkle_roles`] counts the tree's roles instead).
    pub published: Option<u64>,
    /// Targets listed in the bins read, and scaled to every bin (`read` < `count`: an
    /// estimate from the sample).
    pub targets_in_read: u64,
    pub targets_estimate: u64,
}

/// What one delegation search found: the roles visited in pre-order, and the first role it
/// needed that is not read.
struct Search {
    visited: Vec<String>,
    blocked: Option<(String, Authority)>,
}

impl State {
    /// Every targets role the delegations reach, each at its newest verified version: what
    /// `publish`, the online signer, `delegate` and `status --all` need. With succinct hash
    /// bins this reads every bin (one listing and blobs per bin); a write of a few names
    /// needs only [`State::load_for`].
    ///
    /// # Errors
    /// The root chain does not verify or start at `pin`, malformed metadata, registry failures.
    pub async fn load(repo: &MetaRepo, pin: Option<&Pin>) -> Result<Self> {
        Self::load_if_bounded(repo, pin)
            .await?
            .ok_or_else(too_many_roles)
    }

    /// [`State::load`], or `None` when the root of trust has more roles than a full read
    /// holds ([`MAX_ROLES_WALKED`]): for the online signer, which then publishes such a root
    /// only from the role versions submitted to it.
    ///
    /// # Errors
    /// As [`State::load`], except the refusal past the bound.
    pub async fn load_if_bounded(repo: &MetaRepo, pin: Option<&Pin>) -> Result<Option<Self>> {
        let mut state = Self::load_root(repo, pin).await?;
        Ok(state.walk(repo, None).await?.then_some(state))
    }

    /// Only the roles that the delegation search of TUF 5.6.7 visits for `names`, each read
    /// once: pre-order from `targets`, a terminating delegation ends the search, a succinct
    /// delegation leads to the one bin the name hashes to. What a write of those names needs
    /// (the role each goes into, and the roles on the way), at a cost that does not depend on
    /// how many bins or images the root of trust has.
    ///
    /// # Errors
    /// As [`State::load`].
    pub async fn load_for(repo: &MetaRepo, pin: Option<&Pin>, names: &[String]) -> Result<Self> {
        let mut state = Self::load_root(repo, pin).await?;
        state.complete = false;
        state.extend_for(repo, names).await?;
        // A write drops the names a role lists where the search never looks for them
        // (stray names, see `stray_targets`); deciding that for a name may need a role the
        // search for `names` did not visit (a digest name left in its tag's bin: the search
        // goes to the digest's own bin). Read those too, once, for a bounded number of
        // names: past it, undecided names stay where they are (clients ignore them).
        let mut undecided = Vec::new();
        for role in &state.order {
            let Some(t) = state.targets_of(role) else {
                continue;
            };
            undecided.extend(
                t.targets
                    .keys()
                    .filter(|n| state.reaches(role, n).is_none())
                    .take(MAX_UNDECIDED_NAMES.saturating_sub(undecided.len()))
                    .cloned(),
            );
        }
        state.extend_for(repo, &undecided).await?;
        Ok(state)
    }

    /// Read the roles the delegation search visits for `names` that are not read yet.
    ///
    /// # Errors
    /// As [`State::load`].
    pub async fn extend_for(&mut self, repo: &MetaRepo, names: &[String]) -> Result<()> {
        for name in names {
            // Each turn reads one role the search needs next, so this ends after at most
            // MAX_ROLES_VISITED turns per name.
            while let Some((role, auth)) = self.search(name, true).blocked {
                if self.order.len() > MAX_ROLES_LOADED {
                    break;
                }
                self.load_role(repo, role, auth).await?;
            }
        }
        Ok(())
    }

    /// Every explicitly delegated role the delegations reach, and of each succinct hash-bin
    /// delegation at most `sample` bins picked by `seed` (every bin when there are no more):
    /// `ocituf status` of a root of trust with any number of bins at a bounded cost. What was
    /// left out is in [`State::bins`].
    ///
    /// # Errors
    /// As [`State::load`].
    pub async fn load_sampled(
        repo: &MetaRepo,
        pin: Option<&Pin>,
        sample: u64,
        seed: u64,
    ) -> Result<Self> {
        let mut state = Self::load_root(repo, pin).await?;
        // A sampled walk never stops at the bound (it reads a bounded number of bins).
        state.walk(repo, Some((sample, seed))).await?;
        state.complete &= state.bins.iter().all(|b| b.sampled.len() as u64 >= b.count);
        Ok(state)
    }

    /// The verified root and nothing else yet.
    async fn load_root(repo: &MetaRepo, pin: Option<&Pin>) -> Result<Self> {
        let (root, root_found) = repo.root_chain(pin).await?;
        Ok(State {
            targets: BTreeMap::new(),
            order: Vec::new(),
            forked: BTreeSet::new(),
            parsed: BTreeMap::new(),
            bins: Vec::new(),
            complete: true,
            root_found,
            root,
        })
    }

    /// Whether every role the delegations reach is read ([`State::load`]), not only the
    /// ones some names need ([`State::load_for`]) or a sample of bins.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Read the newest verified versions of `role` (signed as `auth` says) into the state.
    async fn load_role(&mut self, repo: &MetaRepo, role: String, auth: Authority) -> Result<()> {
        let tops = repo.newest_all(&role, &auth).await?;
        // A rival that does not parse counts as different: nothing is assumed of it.
        if !crate::edit::converged(&role, &tops).unwrap_or(false) {
            self.forked.insert(role.clone());
        }
        let found = tops.into_iter().next();
        if let Some(f) = &found {
            let t = Targets::from_signed(&f.envelope.signed)
                .config(|| format!("targets role {role:?} version {} is malformed", f.version))?;
            self.parsed.insert(role.clone(), t);
        }
        self.order.push(role.clone());
        self.targets.insert(role, (found, auth));
        Ok(())
    }

    /// Read every role the delegations reach, in pre-order; with `sample` = (n, seed), only
    /// n bins of each succinct delegation. `false`: a full walk (no sample) stopped at
    /// [`MAX_ROLES_WALKED`], and the state must not be used.
    async fn walk(&mut self, repo: &MetaRepo, sample: Option<(u64, u64)>) -> Result<bool> {
        let top = Authority::of_top_level(&self.root, "targets")?;
        let mut stack = vec![("targets".to_owned(), top)];
        while let Some((role, auth)) = stack.pop() {
            if self.targets.contains_key(&role) {
                continue;
            }
            if self.order.len() >= MAX_ROLES_WALKED {
                if sample.is_none() {
                    return Ok(false);
                }
                self.complete = false;
                continue;
            }
            self.load_role(repo, role.clone(), auth).await?;
            let mut children = Vec::new();
            if let Some(d) = self.targets_of(&role).and_then(|t| t.delegations.clone()) {
                for r in d.roles.iter().flatten() {
                    children.push((
                        r.name.clone(),
                        Authority {
                            keys: d.keys.clone(),
                            keyids: r.keyids.clone(),
                            threshold: r.threshold,
                        },
                    ));
                }
                if let Some(s) = &d.succinct_roles {
                    let count = s.bin_count().min(MAX_BINS_LOADED);
                    if count < s.bin_count() {
                        if sample.is_none() {
                            return Ok(false);
                        }
                        self.complete = false;
                    }
                    let picked = match sample {
                        Some((n, seed)) => sample_bins(count, n, seed),
                        None => (0..count).collect(),
                    };
                    repo.progress().note(format_args!(
                        "loading {} of {} hash bins of {role}…",
                        picked.len(),
                        s.bin_count()
                    ));
                    let names: Vec<String> = picked.iter().map(|b| s.bin_name(*b)).collect();
                    for name in &names {
                        children.push((
                            name.clone(),
                            Authority {
                                keys: d.keys.clone(),
                                keyids: s.keyids.clone(),
                                threshold: s.threshold,
                            },
                        ));
                    }
                    self.bins.push(BinsRead {
                        delegator: role.clone(),
                        count: s.bin_count(),
                        sampled: names,
                    });
                }
            }
            for c in children.into_iter().rev() {
                stack.push(c);
            }
        }
        Ok(true)
    }

    /// The delegation search of TUF 5.6.7 for `path` over the roles read so far. With
    /// `stop`, it stops at the first role it needs that is not read (`blocked`, with the
    /// authority its delegator gives it); without, such a role counts as one without a
    /// version (what [`State::load`] leaves out only past its caps).
    fn search(&self, path: &str, stop: bool) -> Search {
        let mut visited: Vec<String> = Vec::new();
        // (role, its delegator), the top is visited next.
        let mut stack = vec![("targets".to_owned(), None::<String>)];
        while let Some((role, delegator)) = stack.pop() {
            if visited.contains(&role) || visited.len() > MAX_ROLES_VISITED {
                continue;
            }
            if stop && !self.targets.contains_key(&role) {
                let auth = match &delegator {
                    None => Authority::of_top_level(&self.root, "targets").ok(),
                    Some(d) => self.delegated_authority(d, &role),
                };
                if let Some(auth) = auth {
                    return Search {
                        visited,
                        blocked: Some((role, auth)),
                    };
                }
            }
            visited.push(role.clone());
            let Some(d) = self.targets_of(&role).and_then(|t| t.delegations.as_ref()) else {
                continue;
            };
            let mut children = Vec::new();
            for (name, terminating) in d.roles_for_target(path) {
                children.push((name, Some(role.clone())));
                if terminating {
                    // TUF 5.6.7.2.2: a terminating delegation ends the search of every
                    // other branch, as the client's search does.
                    stack.clear();
                    break;
                }
            }
            for c in children.into_iter().rev() {
                stack.push(c);
            }
        }
        Search {
            visited,
            blocked: None,
        }
    }

    /// The keys and threshold that `delegator` (read) gives `role`.
    fn delegated_authority(&self, delegator: &str, role: &str) -> Option<Authority> {
        let d = self.targets_of(delegator)?.delegations.as_ref()?;
        let (keyids, threshold) = d.role_keys(role)?;
        Some(Authority {
            keys: d.keys.clone(),
            keyids: keyids.to_vec(),
            threshold,
        })
    }

    /// The version `snapshot` lists for each role of this state: from its `meta`, and with
    /// a snapshot Merkle tree (docs/oci-mapping.md §11) from the tree's entries, proven by
    /// walks that read only the nodes on the paths of the roles read (shared nodes once),
    /// so a sampled state costs a bounded number of reads at any size.
    ///
    /// # Errors
    /// A malformed Merkle root or node, a node missing from the repository; registry failures.
    pub async fn published(
        &self,
        repo: &MetaRepo,
        snapshot: Option<&Snapshot>,
    ) -> Result<Published> {
        let Some(snapshot) = snapshot else {
            return Ok(Published::default());
        };
        let mut versions: BTreeMap<String, u64> = self
            .order
            .iter()
            .filter_map(|r| Some((r.clone(), snapshot.role_meta(r)?.version)))
            .collect();
        let tree = ocituf_tuf::merkle::MerkleRoot::of_snapshot(snapshot)
            .config(|| "the snapshot's Merkle root is malformed".to_owned())?;
        let Some(tree) = tree else {
            return Ok(Published {
                versions,
                merkle_roles: None,
            });
        };
        let delegated: Vec<String> = self
            .order
            .iter()
            .filter(|r| *r != "targets")
            .cloned()
            .collect();
        for (role, m) in repo.merkle_entries(&tree, &delegated).await? {
            versions.insert(role, m.version);
        }
        Ok(Published {
            versions,
            merkle_roles: Some(tree.roles),
        })
    }

    /// Of each hash-bin delegation read: bins, bins read, bins `snapshot` lists, and the
    /// targets in the bins read with their estimate over every bin.
    pub fn bins_summaries(&self, snapshot: Option<&Snapshot>) -> Vec<BinsSummary> {
        let merkle = snapshot.is_some_and(|s| s.extra.contains_key(ocituf_tuf::merkle::FIELD));
        let mut out = Vec::new();
        for b in &self.bins {
            let succinct = self
                .targets_of(&b.delegator)
                .and_then(|t| t.delegations.as_ref())
                .and_then(|d| d.succinct_roles.as_ref());
            let published = match (snapshot, succinct) {
                _ if merkle => None,
                (Some(s), Some(succinct)) => Some(
                    s.meta
                        .keys()
                        .filter_map(|k| k.strip_suffix(".json"))
                        .filter(|r| succinct.is_delegated_role(r))
                        .count() as u64,
                ),
                _ => Some(0),
            };
            let read = b.sampled.len() as u64;
            let targets = b
                .sampled
                .iter()
                .filter_map(|r| self.targets_of(r))
                .map(|t| t.targets.len() as u64)
                .sum::<u64>();
            let estimate = if read == 0 {
                0
            } else {
                u64::try_from(u128::from(targets) * u128::from(b.count) / u128::from(read))
                    .unwrap_or(u64::MAX)
            };
            out.push(BinsSummary {
                delegator: b.delegator.clone(),
                count: b.count,
                read,
                published,
                targets_in_read: targets,
                targets_estimate: estimate,
            });
        }
        out
    }

    /// The parsed newest version of a targets role (`None`: no version yet, or not a role
    /// of this state).
    pub fn targets_of(&self, role: &str) -> Option<&Targets> {
        self.parsed.get(role)
    }

    /// The delegation search of TUF 5.6.7 for `path`, over the verified state: the roles in
    /// pre-order that are trusted for `path` (a terminating delegation stops the search).
    /// The client runs the same search, so a name is only ever verifiable in these roles.
    pub fn responsible_roles(&self, path: &str) -> Vec<String> {
        self.search(path, false).visited
    }

    /// Whether the delegation search for `path` reaches `role`: only then can a client
    /// verify `path` from it.
    pub fn trusted_for(&self, role: &str, path: &str) -> bool {
        self.responsible_roles(path).iter().any(|r| r == role)
    }

    /// Whether the delegation search for `path` reaches `role`, when the roles read decide
    /// it: `None` when the search needs a role this state did not read before it gets there
    /// (a state from [`State::load_for`] asked about a name it was not loaded for).
    pub fn reaches(&self, role: &str, path: &str) -> Option<bool> {
        let s = self.search(path, true);
        if s.visited.iter().any(|r| r == role) {
            Some(true)
        } else if s.blocked.is_some() {
            None
        } else {
            Some(false)
        }
    }

    /// Whether every role the search for `path` visits is read: then the role a name goes
    /// into, and every role on the way to it, are known.
    pub fn covers(&self, path: &str) -> bool {
        self.search(path, true).blocked.is_none()
    }

    /// Target names that a role lists but that the delegation search never reaches in it
    /// (metadata written before the search decided where names go, or by hand): clients
    /// ignore them, and the next write to the role removes them.
    pub fn stray_targets(&self) -> Vec<StrayTarget> {
        let mut out = Vec::new();
        for role in &self.order {
            let Some(t) = self.targets_of(role) else {
                continue;
            };
            for name in t.targets.keys() {
                if !self.trusted_for(role, name) {
                    out.push(StrayTarget {
                        role: role.clone(),
                        name: name.clone(),
                    });
                }
            }
        }
        out
    }
}

/// How many roles one delegation search visits at most (TUF 5.6.7.1 bounds the search).
pub const MAX_ROLES_VISITED: usize = 1024;
/// How many roles a full walk reads at most: past it [`State::load`] refuses (a write from
/// a partial state would leave roles out of the snapshot).
pub const MAX_ROLES_WALKED: usize = (1 << 16) + MAX_ROLES_VISITED;

/// Why [`State::load`] stops: the root of trust has more roles than a full read holds.
fn too_many_roles() -> Error {
    fail(
        ErrorKind::Config,
        format!(
            "this root of trust delegates to more than {MAX_ROLES_WALKED} targets roles, more than a \
             full read holds: a command that reads every role (publish, delegate, status --all, \
             site) would leave some out, so it stops here; publish through the online signer \
             (`ocituf serve`, which publishes only the role versions submitted to it) and use \
             `ocituf status` without --all (it samples the hash bins)"
        ),
    )
}
/// How many roles [`State::extend_for`] reads at most (a batch touches at most two bins
/// per image).
const MAX_ROLES_LOADED: usize = 1 << 17;
/// How many names listed where the search for them needs roles not yet read
/// [`State::load_for`] reads those roles for (legacy stray names; each costs one role).
const MAX_UNDECIDED_NAMES: usize = 256;
/// How many bins of one succinct delegation a full walk reads at most.
const MAX_BINS_LOADED: u64 = 1 << 16;
const _: () = assert!(MAX_BINS_LOADED + MAX_ROLES_VISITED as u64 == MAX_ROLES_WALKED as u64);

/// `n` distinct bins of `count`, picked by `seed` (a splitmix64 stream: the same seed picks
/// the same bins), in bin order; every bin when `n >= count`.
pub fn sample_bins(count: u64, n: u64, seed: u64) -> Vec<u64> {
    if n >= count {
        return (0..count).collect();
    }
    let mut picked = BTreeSet::new();
    let mut x = seed;
    while (picked.len() as u64) < n {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        picked.insert(z % count);
    }
    picked.into_iter().collect()
}

/// A target name listed in a role the delegation search does not reach for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayTarget {
    pub role: String,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::sample_bins;

    #[test]
    fn a_seeded_sample_of_bins_is_distinct_in_range_and_the_same_for_the_same_seed() {
        let a = sample_bins(65_536, 32, 7);
        assert_eq!(a.len(), 32);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
        assert!(a.iter().all(|b| *b < 65_536));
        assert_eq!(a, sample_bins(65_536, 32, 7));
        assert_ne!(a, sample_bins(65_536, 32, 8));
        assert_eq!(sample_bins(16, 32, 7), (0..16).collect::<Vec<_>>());
        assert_eq!(sample_bins(32, 31, 1).len(), 31);
    }
}
