//! Targets metadata: target files and delegations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{check_hashes, expires_format, Delegations, Role};
use crate::cjson::Value;
use crate::crypto::hash;
use crate::error::Error;

/// One target file: its length, hashes, and optional `custom` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFile {
    pub length: u64,
    /// Algorithm name to lowercase hex; never empty.
    pub hashes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    /// Fields this crate does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl TargetFile {
    /// The entry for `data`, hashed with each of `algorithms` (`sha256`, `sha512`, ...).
    ///
    /// # Errors
    /// [`Error::UnsupportedHash`] for an algorithm this crate does not implement.
    pub fn from_data(data: &[u8], algorithms: &[&str]) -> Result<Self, Error> {
        let mut hashes = BTreeMap::new();
        for alg in algorithms {
            let digest = hash::digest(alg, data).ok_or_else(|| Error::UnsupportedHash {
                what: "target".to_owned(),
                algorithm: (*alg).to_owned(),
            })?;
            hashes.insert((*alg).to_owned(), digest);
        }
        Ok(TargetFile {
            length: data.len() as u64,
            hashes,
            custom: None,
            extra: BTreeMap::new(),
        })
    }
}

/// The `signed` part of `targets.json` or of a delegated targets role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    pub spec_version: String,
    pub version: u64,
    #[serde(with = "expires_format")]
    pub expires: OffsetDateTime,
    /// Target path to file information.
    pub targets: BTreeMap<String, TargetFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    /// Fields this crate does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Role for Targets {
    const TYPE: &'static str = "targets";

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
        for file in self.targets.values() {
            check_hashes("targets", &file.hashes)?;
        }
        if let Some(delegations) = &self.delegations {
            delegations.validate()?;
        }
        Ok(())
    }
}
