//! Root metadata: the keys and thresholds of the top-level roles.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{check_keyids_threshold, expires_format, invalid, Role, TOP_LEVEL_ROLES};
use crate::cjson::Value;
use crate::crypto::{KeyId, PublicKey};
use crate::error::Error;

/// The keys of one role and how many of them must sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// The keyids that may sign for the role.
    pub keyids: Vec<KeyId>,
    /// How many distinct keys must sign.
    pub threshold: u32,
    /// Fields this crate does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl RoleKeys {
    /// `threshold` of `keyids`.
    pub fn new(keyids: Vec<KeyId>, threshold: u32) -> Self {
        RoleKeys {
            keyids,
            threshold,
            extra: BTreeMap::new(),
        }
    }
}

/// The `signed` part of `root.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Root {
    pub spec_version: String,
    pub version: u64,
    #[serde(with = "expires_format")]
    pub expires: OffsetDateTime,
    /// Absent means false (python-tuf writes it whenever it is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_snapshot: Option<bool>,
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// Exactly the four top-level roles.
    pub roles: BTreeMap<String, RoleKeys>,
    /// Fields this crate does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Root {
    /// Whether the repository uses consistent snapshots (`VERSION.ROLE.json` names).
    pub fn consistent_snapshot(&self) -> bool {
        self.consistent_snapshot.unwrap_or(false)
    }

    /// The keys and threshold of a top-level role.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the role is not in `roles` (never for validated metadata).
    pub fn role(&self, name: &str) -> Result<&RoleKeys, Error> {
        self.roles
            .get(name)
            .ok_or_else(|| invalid("root", format!("no role {name:?}")))
    }
}

impl Role for Root {
    const TYPE: &'static str = "root";

    fn version(&self) -> u64 {
        self.version
    }

    fn expires(&self) -> OffsetDateTime {
        self.expires
    }

    fn spec_version(&self) -> &str {
        &self.spec_version
    }

    fn extra_mut(&mut self) -> &mut BTreeMap<String, Value> {
        &mut self.extra
    }

    fn validate_content(&self) -> Result<(), Error> {
        let names: Vec<&str> = self.roles.keys().map(String::as_str).collect();
        let mut expected = TOP_LEVEL_ROLES.to_vec();
        expected.sort_unstable();
        if names != expected {
            return Err(invalid(
                "root",
                "roles must be exactly root, timestamp, snapshot and targets",
            ));
        }
        for (name, role) in &self.roles {
            check_keyids_threshold(&format!("root (role {name})"), &role.keyids, role.threshold)?;
        }
        Ok(())
    }
}
