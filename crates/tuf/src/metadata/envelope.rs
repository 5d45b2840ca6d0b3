//! The signed envelope: `{"signed": ..., "signatures": [...]}`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cjson::{self, Value};
use crate::crypto::KeyId;
use crate::error::Error;

/// One signature of a metadata file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The keyid the signer declares (opaque).
    pub keyid: KeyId,
    /// Hex-encoded signature. An empty string is no signature (ignored, not an error).
    pub sig: String,
    /// Fields this crate does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A metadata file as received: the `signed` value untouched, and its signatures.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The `signed` value exactly as parsed, unknown fields included.
    pub signed: Value,
    /// The signatures, in file order; keyids are unique (checked by [`Envelope::parse`]).
    pub signatures: Vec<Signature>,
    /// Top-level fields other than `signed` and `signatures`, kept.
    pub extra: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    signed: Value,
    signatures: Vec<Signature>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

impl Envelope {
    /// Parse untrusted bytes of the metadata of `role` (the name is for errors only).
    ///
    /// # Errors
    /// [`Error::Json`] for bytes the strict parser refuses, [`Error::Schema`] for a file that
    /// is not an envelope, [`Error::DuplicateSignatureKeyId`] when two signatures carry the
    /// same keyid.
    ///
    /// # Security
    /// Duplicate signature keyids reject the whole file, so that one key can never be
    /// counted twice towards a threshold, whatever a later check does.
    pub fn parse(role: &str, bytes: &[u8]) -> Result<Self, Error> {
        let value = cjson::parse(bytes).map_err(|source| Error::Json {
            what: format!("{role} metadata"),
            source,
        })?;
        let raw: RawEnvelope = serde_json::from_value(value).map_err(|source| Error::Schema {
            role: role.to_owned(),
            source,
        })?;
        if !raw.signed.is_object() {
            return Err(crate::metadata::invalid(role, "signed is not an object"));
        }
        let mut seen = BTreeSet::new();
        for sig in &raw.signatures {
            if !seen.insert(&sig.keyid) {
                return Err(Error::DuplicateSignatureKeyId {
                    role: role.to_owned(),
                    keyid: sig.keyid.to_string(),
                });
            }
        }
        Ok(Envelope {
            signed: raw.signed,
            signatures: raw.signatures,
            extra: raw.extra,
        })
    }

    /// The `_type` of the signed value, if it has a string one.
    pub fn role_type(&self) -> Option<&str> {
        self.signed.get("_type").and_then(Value::as_str)
    }

    /// The bytes signatures are made over: the canonical JSON of `signed`.
    ///
    /// # Errors
    /// [`Error::Canonical`] (never for parsed values, which hold integers only).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, Error> {
        cjson::to_canonical(&self.signed).map_err(|source| Error::Canonical {
            what: "signed metadata".to_owned(),
            source,
        })
    }

    /// The whole file as this crate writes metadata: sorted keys, compact, valid JSON
    /// ([`cjson::to_json`]); byte-for-byte reproducible.
    ///
    /// # Errors
    /// [`Error::Canonical`] if a value holds a floating point number.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut map = serde_json::Map::new();
        for (k, v) in &self.extra {
            map.insert(k.clone(), v.clone());
        }
        map.insert("signed".to_owned(), self.signed.clone());
        let signatures =
            serde_json::to_value(&self.signatures).map_err(|source| Error::Schema {
                role: "signatures".to_owned(),
                source,
            })?;
        map.insert("signatures".to_owned(), signatures);
        cjson::to_json(&Value::Object(map)).map_err(|source| Error::Canonical {
            what: "metadata".to_owned(),
            source,
        })
    }
}
