//! The delegation walk for one target path (TUF 5.7), without I/O.
//!
//! Pre-order depth-first search from top-level targets: a role's own targets first, then its
//! delegations in order; a terminating delegation that matches ends the search of every
//! other branch; visited roles are skipped (cycles); at most `max_delegations` roles are
//! visited. When a role is needed that is not loaded yet, [`TargetSearch::step`] says so
//! and the caller loads it into the trusted set before stepping again.

use std::collections::{BTreeMap, BTreeSet};

use super::TrustedSet;
use crate::cjson::Value;
use crate::error::Error;

/// A target file that trusted metadata lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    /// The target path.
    pub path: String,
    /// Trusted length in bytes.
    pub length: u64,
    /// Trusted hashes: algorithm name to hex.
    pub hashes: BTreeMap<String, String>,
    /// The `custom` field, if any.
    pub custom: Option<Value>,
}

/// What the search needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchStep {
    /// Load `role` as delegated by `delegator` into the trusted set, then step again.
    Load { role: String, delegator: String },
    /// The target, from the first role in search order that lists it.
    Found(TargetInfo),
    /// No role trusted for the path lists it.
    NotFound,
}

/// The state of one target search.
#[derive(Debug, Clone)]
pub struct TargetSearch {
    path: String,
    /// (role, delegator), the top of the stack is visited next.
    stack: Vec<(String, String)>,
    visited: BTreeSet<String>,
    remaining: u32,
}

impl TargetSearch {
    /// Start a search for `path`, visiting at most `max_delegations` roles.
    pub fn new(path: &str, max_delegations: u32) -> Self {
        TargetSearch {
            path: path.to_owned(),
            stack: vec![("targets".to_owned(), "root".to_owned())],
            visited: BTreeSet::new(),
            remaining: max_delegations,
        }
    }

    /// Advance the search as far as the trusted set allows.
    ///
    /// # Errors
    /// [`Error::Threshold`] if a role already trusted through another delegator is not
    /// signed as this delegator requires.
    pub fn step(&mut self, set: &mut TrustedSet) -> Result<SearchStep, Error> {
        while self.remaining > 0 {
            let Some((role, delegator)) = self.stack.pop() else {
                break;
            };
            if self.visited.contains(&role) {
                continue;
            }
            if !set.has_targets(&role) {
                self.stack.push((role.clone(), delegator.clone()));
                return Ok(SearchStep::Load { role, delegator });
            }
            set.verify_delegated_by(&role, &delegator)?;
            let Some(targets) = set.delegated_targets(&role) else {
                continue;
            };
            if let Some(file) = targets.targets.get(&self.path) {
                return Ok(SearchStep::Found(TargetInfo {
                    path: self.path.clone(),
                    length: file.length,
                    hashes: file.hashes.clone(),
                    custom: file.custom.clone(),
                }));
            }
            self.visited.insert(role.clone());
            self.remaining -= 1;
            if let Some(delegations) = &targets.delegations {
                let mut children = Vec::new();
                for (child, terminating) in delegations.roles_for_target(&self.path) {
                    children.push((child, role.clone()));
                    if terminating {
                        // TUF 5.7.2.2: a terminating match ends the search of other branches.
                        self.stack.clear();
                        break;
                    }
                }
                children.reverse();
                self.stack.extend(children);
            }
        }
        Ok(SearchStep::NotFound)
    }
}
