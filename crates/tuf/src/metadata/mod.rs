//! TUF metadata: the signed envelope and the `signed` part of every role.
//!
//! [`Envelope`] is what a file holds (`signed` plus `signatures`), parsed strictly and kept
//! as a [`Value`] so that signatures are checked over the canonical form of `signed` as
//! received, unknown fields included. The role types ([`Root`], [`Timestamp`], [`Snapshot`],
//! [`Targets`]) are typed views of that value; each keeps the fields it does not know in
//! `extra` so that a round trip through them loses nothing.
//!
//! This module checks the shape of metadata and the rules of the specification that need no
//! other metadata (versions are positive, thresholds are at least 1, keyids in a role are
//! unique, ...). It does not verify signatures or compare roles: see [`crate::trusted`].

mod delegation;
mod envelope;
mod meta;
mod root;
mod targets;

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

pub use delegation::{fnmatch, DelegatedRole, Delegations, SuccinctRoles};
pub use envelope::{Envelope, Signature};
pub use meta::{MetaFile, Snapshot, Timestamp};
pub use root::{RoleKeys, Root};
pub use targets::{TargetFile, Targets};

use crate::cjson::Value;
use crate::crypto::KeyId;
use crate::error::Error;

/// The version of the TUF specification this crate writes.
pub const SPEC_VERSION: &str = "1.0.31";

/// The names of the top-level roles.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "timestamp", "snapshot", "targets"];

/// What every role's `signed` part has in common.
pub trait Role: Serialize + DeserializeOwned {
    /// The `_type` of this role class.
    const TYPE: &'static str;
    /// `version`.
    fn version(&self) -> u64;
    /// `expires`.
    fn expires(&self) -> OffsetDateTime;
    /// `spec_version`.
    fn spec_version(&self) -> &str;
    /// The fields this crate does not know (where `_type` lands when deserialising).
    fn extra_mut(&mut self) -> &mut BTreeMap<String, Value>;
    /// Checks of this role's content that need no other metadata.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the rule.
    fn validate_content(&self) -> Result<(), Error>;

    /// Whether this metadata has expired at `now` (TUF: expired when `now >= expires`).
    fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires()
    }

    /// All checks of [`Self::validate_content`] plus those common to every role.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the rule.
    fn validate(&self) -> Result<(), Error> {
        if self.version() == 0 {
            return Err(invalid(Self::TYPE, "version must be at least 1"));
        }
        check_spec_version(Self::TYPE, self.spec_version())?;
        self.validate_content()
    }

    /// The typed view of a `signed` value: checks `_type`, the schema and [`Self::validate`].
    ///
    /// # Errors
    /// [`Error::WrongType`], [`Error::Schema`], [`Error::Invalid`].
    fn from_signed(signed: &Value) -> Result<Self, Error> {
        let got = signed.get("_type").and_then(Value::as_str).unwrap_or("");
        if got != Self::TYPE {
            return Err(Error::WrongType {
                expected: Self::TYPE.to_owned(),
                got: got.to_owned(),
            });
        }
        // Deserialise from the borrowed value (no copy of a large snapshot); `_type` lands in
        // `extra` and is taken out again: it is written back by `to_signed`.
        let mut role = Self::deserialize(signed).map_err(|source| Error::Schema {
            role: Self::TYPE.to_owned(),
            source,
        })?;
        role.extra_mut().remove("_type");
        role.validate()?;
        Ok(role)
    }

    /// The `signed` value of this role, `_type` included.
    ///
    /// # Errors
    /// [`Error::Schema`] if serialisation fails.
    fn to_signed(&self) -> Result<Value, Error> {
        let mut value = serde_json::to_value(self).map_err(|source| Error::Schema {
            role: Self::TYPE.to_owned(),
            source,
        })?;
        if let Value::Object(map) = &mut value {
            map.insert("_type".to_owned(), Value::String(Self::TYPE.to_owned()));
        }
        Ok(value)
    }
}

pub(crate) fn invalid(role: &str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        role: role.to_owned(),
        reason: reason.into(),
    }
}

/// python-tuf accepts `MAJOR.MINOR[.PATCH]` with the major version of the spec it implements.
fn check_spec_version(role: &str, spec_version: &str) -> Result<(), Error> {
    let parts: Vec<&str> = spec_version.split('.').collect();
    let numeric = parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !(2..=3).contains(&parts.len()) || !numeric {
        return Err(invalid(
            role,
            format!("spec_version {spec_version:?} is malformed"),
        ));
    }
    if parts[0] != "1" {
        return Err(invalid(
            role,
            format!("spec_version {spec_version:?} is not supported"),
        ));
    }
    Ok(())
}

/// A role's keys and threshold: keyids must be unique and the threshold at least 1.
pub(crate) fn check_keyids_threshold(
    role: &str,
    keyids: &[KeyId],
    threshold: u32,
) -> Result<(), Error> {
    if threshold == 0 {
        return Err(invalid(role, "threshold must be at least 1"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in keyids {
        if !seen.insert(id) {
            return Err(invalid(role, format!("keyid {id} is listed twice")));
        }
    }
    Ok(())
}

pub(crate) fn check_hashes(role: &str, hashes: &BTreeMap<String, String>) -> Result<(), Error> {
    if hashes.is_empty() {
        return Err(invalid(role, "hashes must not be empty"));
    }
    Ok(())
}

/// `expires` as python-tuf reads and writes it: `YYYY-MM-DDTHH:MM:SSZ`, nothing else.
pub mod expires_format {
    use serde::{Deserialize as _, Deserializer, Serializer};
    use time::format_description::FormatItem;
    use time::macros::format_description;
    use time::{OffsetDateTime, PrimitiveDateTime};

    const FORMAT: &[FormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

    /// Format a time as TUF writes `expires` (UTC, whole seconds).
    ///
    /// # Errors
    /// If the year has more than four digits.
    pub fn format(t: OffsetDateTime) -> Result<String, time::error::Format> {
        t.to_offset(time::UtcOffset::UTC).format(FORMAT)
    }

    /// Parse `expires`.
    ///
    /// # Errors
    /// If the text is not exactly `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn parse(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
        Ok(PrimitiveDateTime::parse(s, FORMAT)?.assume_utc())
    }

    pub(crate) fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let text = format(*t).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
