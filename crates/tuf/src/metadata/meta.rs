//! Timestamp and snapshot metadata: versions, lengths and hashes of other metadata files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{check_hashes, expires_format, invalid, Role};
use crate::cjson::Value;
use crate::error::Error;

/// What a parent says about a metadata file (`meta` entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    /// Fields this crate does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl MetaFile {
    /// A version without length and hashes.
    pub fn new(version: u64) -> Self {
        MetaFile {
            version,
            length: None,
            hashes: None,
            extra: BTreeMap::new(),
        }
    }

    fn validate(&self, role: &str, name: &str) -> Result<(), Error> {
        if self.version == 0 {
            return Err(invalid(role, format!("meta {name:?} has version 0")));
        }
        if let Some(hashes) = &self.hashes {
            check_hashes(role, hashes)?;
        }
        Ok(())
    }
}

/// The `signed` part of `timestamp.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timestamp {
    pub spec_version: String,
    pub version: u64,
    #[serde(with = "expires_format")]
    pub expires: OffsetDateTime,
    /// Holds `snapshot.json` (checked).
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields this crate does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Timestamp {
    /// The `snapshot.json` entry.
    ///
    /// # Errors
    /// [`Error::Invalid`] if absent (never for validated metadata).
    pub fn snapshot_meta(&self) -> Result<&MetaFile, Error> {
        self.meta
            .get("snapshot.json")
            .ok_or_else(|| invalid("timestamp", "meta has no snapshot.json"))
    }
}

impl Role for Timestamp {
    const TYPE: &'static str = "timestamp";

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
        self.snapshot_meta()?.validate("timestamp", "snapshot.json")
    }
}

/// The `signed` part of `snapshot.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub spec_version: String,
    pub version: u64,
    #[serde(with = "expires_format")]
    pub expires: OffsetDateTime,
    /// `ROLE.json` of every targets role to its version (and optionally length and hashes).
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields this crate does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Snapshot {
    /// The entry of a targets role (`targets`, or a delegated role name).
    pub fn role_meta(&self, role: &str) -> Option<&MetaFile> {
        self.meta.get(&format!("{role}.json"))
    }
}

impl Role for Snapshot {
    const TYPE: &'static str = "snapshot";

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
        for (name, meta) in &self.meta {
            meta.validate("snapshot", name)?;
        }
        Ok(())
    }
}
