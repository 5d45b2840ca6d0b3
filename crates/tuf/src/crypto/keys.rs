//! Public keys: the metadata form and the decoded form that verifies.

use std::collections::BTreeMap;
use std::fmt;

use p256::pkcs8::DecodePublicKey as _;
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::traits::PublicKeyParts as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::cjson::{self, Value};
use crate::error::Error;

/// A key identifier as declared in metadata. Opaque: compared as a string, never recomputed
/// from the key and checked (repositories in the wild use other keyid schemes).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// Wrap a declared keyid.
    pub fn new(id: impl Into<String>) -> Self {
        KeyId(id.into())
    }

    /// The keyid as written in metadata.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// The `keyval` of a key: `public` plus any other fields, kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    /// The public key: hex for ed25519, PEM for ecdsa and rsa.
    pub public: String,
    /// Fields this crate does not know, kept for round trips and signatures.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A public key as written in root or delegating targets metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// `ed25519`, `ecdsa`, `ecdsa-sha2-nistp256`, `rsa`, or anything else (carried only).
    pub keytype: String,
    /// `ed25519`, `ecdsa-sha2-nistp256`, `rsassa-pss-sha256`, `rsa-pkcs1v15-sha256`, ...
    pub scheme: String,
    /// The key material.
    pub keyval: KeyVal,
    /// Fields this crate does not know (for example `keyid_hash_algorithms`), kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl PublicKey {
    /// A key of the given type and scheme with only `public` in its `keyval`.
    pub fn new(keytype: &str, scheme: &str, public: String) -> Self {
        PublicKey {
            keytype: keytype.to_owned(),
            scheme: scheme.to_owned(),
            keyval: KeyVal {
                public,
                extra: BTreeMap::new(),
            },
            extra: BTreeMap::new(),
        }
    }

    /// The keyid securesystemslib gives this key: hex sha256 of the canonical JSON of
    /// `{"keytype", "scheme", "keyval"}`. For naming new keys; never used to check a
    /// declared keyid.
    ///
    /// # Errors
    /// [`Error::Canonical`] if `keyval` holds a floating point number.
    pub fn compute_keyid(&self) -> Result<KeyId, Error> {
        let keyval = serde_json::to_value(&self.keyval).map_err(|source| Error::Schema {
            role: "key".to_owned(),
            source,
        })?;
        let mut dict = serde_json::Map::new();
        dict.insert("keytype".to_owned(), Value::String(self.keytype.clone()));
        dict.insert("scheme".to_owned(), Value::String(self.scheme.clone()));
        dict.insert("keyval".to_owned(), keyval);
        let bytes =
            cjson::to_canonical(&Value::Object(dict)).map_err(|source| Error::Canonical {
                what: "public key".to_owned(),
                source,
            })?;
        Ok(KeyId(hex::encode(Sha256::digest(bytes))))
    }

    /// Decode the key for verification.
    ///
    /// # Errors
    /// [`Error::UnsupportedKey`] for a type or scheme this crate does not implement,
    /// [`Error::Key`] for key material that does not decode.
    pub fn decode(&self) -> Result<VerifyingKey, Error> {
        let key_err = |source: Box<dyn std::error::Error + Send + Sync>| Error::Key {
            keytype: self.keytype.clone(),
            source,
        };
        let public = self.keyval.public.trim();
        match (self.keytype.as_str(), self.scheme.as_str()) {
            ("ed25519", "ed25519") => {
                let bytes = hex::decode(public).map_err(|e| key_err(Box::new(e)))?;
                let bytes: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| key_err("ed25519 public key is not 32 bytes".into()))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map_err(|e| key_err(Box::new(e)))?;
                Ok(VerifyingKey::Ed25519(key))
            }
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                let key = p256::ecdsa::VerifyingKey::from_public_key_pem(public)
                    .map_err(|e| key_err(Box::new(e)))?;
                Ok(VerifyingKey::EcdsaP256(key))
            }
            ("rsa", "rsassa-pss-sha256" | "rsa-pkcs1v15-sha256") => {
                let key = rsa::RsaPublicKey::from_public_key_pem(public)
                    .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(public))
                    .map_err(|e| key_err(Box::new(e)))?;
                Ok(if self.scheme == "rsassa-pss-sha256" {
                    VerifyingKey::RsaPssSha256(key)
                } else {
                    VerifyingKey::RsaPkcs1v15Sha256(key)
                })
            }
            _ => Err(Error::UnsupportedKey {
                keytype: self.keytype.clone(),
                scheme: self.scheme.clone(),
            }),
        }
    }
}

/// A decoded public key that can check signatures.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum VerifyingKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    EcdsaP256(p256::ecdsa::VerifyingKey),
    RsaPssSha256(rsa::RsaPublicKey),
    RsaPkcs1v15Sha256(rsa::RsaPublicKey),
}

impl VerifyingKey {
    /// Whether `sig` is a valid signature of `msg` by this key.
    ///
    /// # Security
    /// Ed25519 uses strict verification (no malleable or small-order signatures); ECDSA
    /// signatures must be DER; RSA-PSS accepts the two salt lengths securesystemslib and
    /// python-tuf produce (digest length and maximum).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            VerifyingKey::Ed25519(key) => {
                let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
                    return false;
                };
                key.verify_strict(msg, &sig).is_ok()
            }
            VerifyingKey::EcdsaP256(key) => {
                use p256::ecdsa::signature::Verifier as _;
                let Ok(sig) = p256::ecdsa::Signature::from_der(sig) else {
                    return false;
                };
                key.verify(msg, &sig).is_ok()
            }
            VerifyingKey::RsaPssSha256(key) => {
                let hashed = Sha256::digest(msg);
                // PSS.AUTO in securesystemslib: try the digest length, then the maximum.
                let em_len = (key.n().bits() - 1).div_ceil(8);
                let max_salt = em_len.saturating_sub(32 + 2);
                [32, max_salt].into_iter().any(|salt| {
                    key.verify(rsa::Pss::new_with_salt::<Sha256>(salt), &hashed, sig)
                        .is_ok()
                })
            }
            VerifyingKey::RsaPkcs1v15Sha256(key) => {
                let hashed = Sha256::digest(msg);
                key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &hashed, sig)
                    .is_ok()
            }
        }
    }

    /// Bytes that identify the key material, whatever keyid or encoding it was declared
    /// with: thresholds count distinct keys, not distinct keyids.
    pub fn fingerprint(&self) -> Vec<u8> {
        match self {
            VerifyingKey::Ed25519(key) => [b"ed25519:".as_slice(), key.as_bytes()].concat(),
            VerifyingKey::EcdsaP256(key) => {
                [b"p256:".as_slice(), key.to_encoded_point(true).as_bytes()].concat()
            }
            VerifyingKey::RsaPssSha256(key) | VerifyingKey::RsaPkcs1v15Sha256(key) => {
                let mut out = b"rsa:".to_vec();
                out.extend_from_slice(&key.e().to_bytes_be());
                out.push(b':');
                out.extend_from_slice(&key.n().to_bytes_be());
                out
            }
        }
    }
}
