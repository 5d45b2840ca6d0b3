//! The verified state a writer builds on, and the delegation search (TUF 5.6.7) that decides
//! which role each target name belongs in.

use std::collections::{BTreeMap, BTreeSet};

use ocituf_tuf::metadata::{Role as _, Root, Targets};

use crate::authority::Authority;
use crate::error::{Result, ResultExt as _};
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
}

impl State {
    pub async fn load(repo: &MetaRepo, pin: Option<&Pin>) -> Result<Self> {
        let (root, root_found) = repo.root_chain(pin).await?;
        let mut state = State {
            targets: BTreeMap::new(),
            order: Vec::new(),
            forked: BTreeSet::new(),
            parsed: BTreeMap::new(),
            root_found,
            root,
        };
        let top = Authority::of_top_level(&state.root, "targets")?;
        let mut stack = vec![("targets".to_owned(), top)];
        while let Some((role, auth)) = stack.pop() {
            if state.targets.contains_key(&role) || state.order.len() > 4096 {
                continue;
            }
            let tops = repo.newest_all(&role, &auth).await?;
            // A rival that does not parse counts as different: nothing is assumed of it.
            if !crate::edit::converged(&role, &tops).unwrap_or(false) {
                state.forked.insert(role.clone());
            }
            let found = tops.into_iter().next();
            let mut children = Vec::new();
            if let Some(f) = &found {
                let t = Targets::from_signed(&f.envelope.signed).config(|| {
                    format!("targets role {role:?} version {} is malformed", f.version)
                })?;
                if let Some(d) = &t.delegations {
                    if let Some(roles) = &d.roles {
                        for r in roles {
                            children.push((
                                r.name.clone(),
                                Authority {
                                    keys: d.keys.clone(),
                                    keyids: r.keyids.clone(),
                                    threshold: r.threshold,
                                },
                            ));
                        }
                    }
                    if let Some(s) = &d.succinct_roles {
                        repo.progress().note(format_args!(
                            "loading {} hash bins of {role}…",
                            s.bin_count().min(1 << 16)
                        ));
                        for bin in 0..s.bin_count().min(1 << 16) {
                            children.push((
                                s.bin_name(bin),
                                Authority {
                                    keys: d.keys.clone(),
                                    keyids: s.keyids.clone(),
                                    threshold: s.threshold,
                                },
                            ));
                        }
                    }
                }
                state.parsed.insert(role.clone(), t);
            }
            state.order.push(role.clone());
            state.targets.insert(role, (found, auth));
            for c in children.into_iter().rev() {
                stack.push(c);
            }
        }
        Ok(state)
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
        let mut out = Vec::new();
        let mut stack = vec!["targets".to_owned()];
        while let Some(role) = stack.pop() {
            if out.contains(&role) || out.len() > MAX_ROLES_VISITED {
                continue;
            }
            out.push(role.clone());
            let Some(t) = self.targets_of(&role) else {
                continue;
            };
            let Some(d) = &t.delegations else { continue };
            let mut children = Vec::new();
            for (name, terminating) in d.roles_for_target(path) {
                children.push(name);
                if terminating {
                    break;
                }
            }
            for c in children.into_iter().rev() {
                stack.push(c);
            }
        }
        out
    }

    /// Whether the delegation search for `path` reaches `role`: only then can a client
    /// verify `path` from it.
    pub fn trusted_for(&self, role: &str, path: &str) -> bool {
        self.responsible_roles(path).iter().any(|r| r == role)
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

/// A target name listed in a role the delegation search does not reach for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayTarget {
    pub role: String,
    pub name: String,
}
