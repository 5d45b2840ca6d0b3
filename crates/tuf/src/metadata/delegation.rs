//! Delegations: which roles are trusted for which target paths.
//!
//! Path patterns match per `/` segment with shell-style wildcards (the TUF specification and
//! python-tuf: `*` never crosses a `/`); `path_hash_prefixes` match the hex sha256 of the
//! path; succinct hash bins (TAP 15) map each path to exactly one bin role.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{check_keyids_threshold, invalid, TOP_LEVEL_ROLES};
use crate::cjson::Value;
use crate::crypto::{KeyId, PublicKey};
use crate::error::Error;

/// The `delegations` of a targets role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delegations {
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// Explicit delegated roles, in priority order. Exactly one of `roles` and
    /// `succinct_roles` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    /// Succinct hash bins (TAP 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
    /// Fields this crate does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One explicitly delegated role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    pub name: String,
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
    pub terminating: bool,
    /// Path patterns; exactly one of `paths` and `path_hash_prefixes` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Fields this crate does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Succinct hash bins (TAP 15): `2^bit_length` roles named `{name_prefix}-{bin:0Nx}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccinctRoles {
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
    /// 1 to 32.
    pub bit_length: u32,
    pub name_prefix: String,
    /// Fields this crate does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl DelegatedRole {
    /// Whether this role is trusted for `target_path`.
    pub fn matches(&self, target_path: &str) -> bool {
        if let Some(patterns) = &self.paths {
            return patterns.iter().any(|p| path_matches(target_path, p));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let digest = hex::encode(Sha256::digest(target_path.as_bytes()));
            return prefixes.iter().any(|p| digest.starts_with(p.as_str()));
        }
        false
    }
}

impl SuccinctRoles {
    /// Number of hex digits in a bin name.
    fn suffix_len(&self) -> usize {
        self.bit_length.div_ceil(4) as usize
    }

    /// How many bins there are.
    pub fn bin_count(&self) -> u64 {
        1u64 << self.bit_length.min(32)
    }

    /// The name of bin number `bin`.
    pub fn bin_name(&self, bin: u64) -> String {
        format!(
            "{}-{:0width$x}",
            self.name_prefix,
            bin,
            width = self.suffix_len()
        )
    }

    /// The bin role responsible for `target_path`: the first `bit_length` bits of the
    /// sha256 of the path.
    pub fn role_for_target(&self, target_path: &str) -> String {
        let digest = Sha256::digest(target_path.as_bytes());
        let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        let bin = first.checked_shr(32 - self.bit_length.min(32)).unwrap_or(0);
        self.bin_name(u64::from(bin))
    }

    /// Whether `name` is one of the bins.
    pub fn is_delegated_role(&self, name: &str) -> bool {
        let Some(suffix) = name
            .strip_prefix(self.name_prefix.as_str())
            .and_then(|s| s.strip_prefix('-'))
        else {
            return false;
        };
        if suffix.len() != self.suffix_len() || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        u64::from_str_radix(suffix, 16).is_ok_and(|n| n < self.bin_count())
    }
}

impl Delegations {
    /// The roles trusted for `target_path`, in priority order, each with whether it is
    /// terminating (succinct bins are terminating).
    pub fn roles_for_target(&self, target_path: &str) -> Vec<(String, bool)> {
        if let Some(roles) = &self.roles {
            roles
                .iter()
                .filter(|r| r.matches(target_path))
                .map(|r| (r.name.clone(), r.terminating))
                .collect()
        } else if let Some(succinct) = &self.succinct_roles {
            vec![(succinct.role_for_target(target_path), true)]
        } else {
            Vec::new()
        }
    }

    /// The keyids and threshold of the delegated role `name`, if it is delegated here.
    pub fn role_keys(&self, name: &str) -> Option<(&[KeyId], u32)> {
        if let Some(roles) = &self.roles {
            return roles
                .iter()
                .find(|r| r.name == name)
                .map(|r| (r.keyids.as_slice(), r.threshold));
        }
        self.succinct_roles
            .as_ref()
            .filter(|s| s.is_delegated_role(name))
            .map(|s| (s.keyids.as_slice(), s.threshold))
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        match (&self.roles, &self.succinct_roles) {
            (Some(roles), None) => {
                let mut names = BTreeSet::new();
                for role in roles {
                    if TOP_LEVEL_ROLES.contains(&role.name.as_str()) {
                        return Err(invalid(
                            "targets",
                            format!("top-level role name {:?} delegated", role.name),
                        ));
                    }
                    if !names.insert(role.name.as_str()) {
                        return Err(invalid(
                            "targets",
                            format!("role {:?} delegated twice", role.name),
                        ));
                    }
                    check_keyids_threshold(&role.name, &role.keyids, role.threshold)?;
                    if role.paths.is_some() == role.path_hash_prefixes.is_some() {
                        return Err(invalid(
                            "targets",
                            format!(
                                "role {:?} must have exactly one of paths and path_hash_prefixes",
                                role.name
                            ),
                        ));
                    }
                }
                Ok(())
            }
            (None, Some(succinct)) => {
                check_keyids_threshold(
                    &succinct.name_prefix,
                    &succinct.keyids,
                    succinct.threshold,
                )?;
                if !(1..=32).contains(&succinct.bit_length) {
                    return Err(invalid(
                        "targets",
                        "succinct_roles bit_length must be 1 to 32",
                    ));
                }
                Ok(())
            }
            _ => Err(invalid(
                "targets",
                "delegations must have exactly one of roles and succinct_roles",
            )),
        }
    }
}

/// TUF path pattern match: the path and the pattern have the same number of `/` segments
/// and each segment matches with [`fnmatch`].
fn path_matches(target_path: &str, pattern: &str) -> bool {
    let targets: Vec<&str> = target_path.split('/').collect();
    let patterns: Vec<&str> = pattern.split('/').collect();
    targets.len() == patterns.len() && targets.iter().zip(&patterns).all(|(t, p)| fnmatch(t, p))
}

/// Shell-style match of one name against one pattern, as Python's `fnmatch.fnmatchcase`:
/// `*` any run of characters, `?` one character, `[seq]` / `[!seq]` one character in / not
/// in a set with ranges; an unclosed `[` is literal.
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let pat: Vec<char> = pattern.chars().collect();
    let (mut n, mut p) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after it, name index it covers to).
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pat.get(p) {
            Some('*') => {
                star = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some('?') => Some(p + 1),
            Some('[') => match class_match(&pat, p, name[n]) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                None => (name[n] == '[').then_some(p + 1),
            },
            Some(&c) => (c == name[n]).then_some(p + 1),
            None => None,
        };
        if let Some(next) = step {
            p = next;
            n += 1;
        } else if let Some((sp, sn)) = star {
            p = sp;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == '*')
}

/// Match `c` against the class starting at `pat[start] == '['`. `None` if the class is not
/// closed (then `[` is literal); otherwise whether it matched and the index after `]`.
fn class_match(pat: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = pat.get(i) == Some(&'!');
    if negate {
        i += 1;
    }
    let first = i;
    let mut matched = false;
    loop {
        let &lo = pat.get(i)?;
        if lo == ']' && i > first {
            return Some((matched != negate, i + 1));
        }
        if pat.get(i + 1) == Some(&'-') && pat.get(i + 2).is_some_and(|&hi| hi != ']') {
            let hi = pat[i + 2];
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 3;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
}
