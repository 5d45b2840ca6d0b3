//! Threshold signature verification over the canonical bytes of `signed`.

use std::collections::{BTreeMap, BTreeSet};

use crate::crypto::{KeyId, PublicKey, VerifyingKey};
use crate::error::Error;
use crate::metadata::Envelope;

/// The keys of one role, decoded once, and its threshold.
#[derive(Debug, Clone)]
pub(crate) struct Verifier {
    role: String,
    threshold: u32,
    /// Authorised keys that decode; keys of unknown types cannot sign and are left out.
    keys: Vec<(KeyId, VerifyingKey)>,
}

impl Verifier {
    pub(crate) fn new(
        role: &str,
        keys: &BTreeMap<KeyId, PublicKey>,
        keyids: &[KeyId],
        threshold: u32,
    ) -> Self {
        let keys = keyids
            .iter()
            .filter_map(|id| {
                let key = keys.get(id)?.decode().ok()?;
                Some((id.clone(), key))
            })
            .collect();
        Verifier {
            role: role.to_owned(),
            threshold,
            keys,
        }
    }

    /// Check that at least `threshold` distinct authorised keys signed `signed_bytes`.
    ///
    /// # Security
    /// Keys count once each however many keyids name them (distinct key material); an
    /// empty or undecodable signature counts for nothing; duplicate signature keyids were
    /// refused when the envelope was parsed.
    pub(crate) fn verify(&self, envelope: &Envelope, signed_bytes: &[u8]) -> Result<(), Error> {
        let valid = self.valid_keyids(envelope, signed_bytes).len();
        let valid = u32::try_from(valid).unwrap_or(u32::MAX);
        if valid >= self.threshold {
            Ok(())
        } else {
            Err(Error::Threshold {
                role: self.role.clone(),
                valid,
                threshold: self.threshold,
            })
        }
    }
}

impl Verifier {
    /// The authorised keyids whose signatures verify, one per distinct key.
    fn valid_keyids(&self, envelope: &Envelope, signed_bytes: &[u8]) -> Vec<KeyId> {
        // Index once: a file may carry many signatures (bounded by its length limit).
        let by_keyid: BTreeMap<&KeyId, &str> = envelope
            .signatures
            .iter()
            .map(|s| (&s.keyid, s.sig.as_str()))
            .collect();
        let mut counted = BTreeSet::new();
        let mut valid = Vec::new();
        for (keyid, key) in &self.keys {
            let Some(sig) = by_keyid.get(keyid) else {
                continue;
            };
            if sig.is_empty() {
                continue;
            }
            let Ok(sig) = hex::decode(sig) else {
                continue;
            };
            let fingerprint = key.fingerprint();
            if counted.contains(&fingerprint) {
                continue;
            }
            if key.verify(signed_bytes, &sig) {
                counted.insert(fingerprint);
                valid.push(keyid.clone());
            }
        }
        valid
    }
}

/// Who has signed a metadata file, for threshold signing and status output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureReport {
    /// Authorised keyids with a valid signature (one per distinct key).
    pub valid: Vec<KeyId>,
    /// Authorised keyids without a valid signature yet.
    pub missing: Vec<KeyId>,
    /// How many distinct keys must sign.
    pub threshold: u32,
}

impl SignatureReport {
    /// Whether the threshold is met.
    pub fn is_complete(&self) -> bool {
        u32::try_from(self.valid.len()).unwrap_or(u32::MAX) >= self.threshold
    }
}

/// Check the signatures of a metadata file against a role's keys and threshold, as the
/// trusted set does, outside the client workflow: a repository tool verifying a pending
/// root or a team's new targets version before publishing it.
///
/// # Errors
/// Parsing errors, [`Error::DuplicateSignatureKeyId`]. A threshold that is not met is not an
/// error here: see [`SignatureReport::is_complete`].
///
/// # Security
/// Checks signatures only: not `_type`, versions, expiry or hashes. Only keys whose types
/// this crate implements can count.
pub fn signature_report(
    role: &str,
    bytes: &[u8],
    keys: &BTreeMap<KeyId, PublicKey>,
    keyids: &[KeyId],
    threshold: u32,
) -> Result<SignatureReport, Error> {
    let envelope = Envelope::parse(role, bytes)?;
    let signed_bytes = envelope.signed_bytes()?;
    let verifier = Verifier::new(role, keys, keyids, threshold);
    let valid = verifier.valid_keyids(&envelope, &signed_bytes);
    let missing = keyids
        .iter()
        .filter(|id| !valid.contains(id))
        .cloned()
        .collect();
    Ok(SignatureReport {
        valid,
        missing,
        threshold,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::crypto::{PrivateKey, Signer};
    use crate::metadata::Signature;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Threshold verification accepts exactly when enough distinct authorised keys made
        /// valid signatures, whatever else is in the signature list.
        #[test]
        fn threshold_counts_distinct_valid_keys(
            n in 1usize..6,
            threshold in 1u32..7,
            signing in prop::collection::vec(any::<bool>(), 6),
            corrupt in prop::collection::vec(any::<bool>(), 6),
            outsider_signs in any::<bool>(),
        ) {
            let keys: Vec<PrivateKey> = (0..n)
                .map(|i| PrivateKey::ed25519_from_seed([u8::try_from(i).unwrap() + 1; 32]).unwrap())
                .collect();
            let outsider = PrivateKey::ed25519_from_seed([99; 32]).unwrap();
            let mut key_map = BTreeMap::new();
            for k in keys.iter().chain([&outsider]) {
                key_map.insert(k.key_id().clone(), k.public_key().clone());
            }
            let keyids: Vec<KeyId> = keys.iter().map(|k| k.key_id().clone()).collect();
            let verifier = Verifier::new("r", &key_map, &keyids, threshold);
            let msg = b"signed bytes";
            let mut envelope = Envelope {
                signed: serde_json::json!({}),
                signatures: Vec::new(),
                extra: BTreeMap::new(),
            };
            let mut good = 0u32;
            for (i, k) in keys.iter().enumerate() {
                if !signing[i] {
                    continue;
                }
                let mut sig = k.sign(msg).unwrap();
                if corrupt[i] {
                    sig[0] ^= 1;
                } else {
                    good += 1;
                }
                envelope.signatures.push(Signature {
                    keyid: k.key_id().clone(),
                    sig: hex::encode(sig),
                    extra: BTreeMap::new(),
                });
            }
            if outsider_signs {
                envelope.signatures.push(Signature {
                    keyid: outsider.key_id().clone(),
                    sig: hex::encode(outsider.sign(msg).unwrap()),
                    extra: BTreeMap::new(),
                });
            }
            let result = verifier.verify(&envelope, msg);
            if good >= threshold {
                prop_assert!(result.is_ok());
            } else {
                let matched = matches!(result, Err(Error::Threshold { valid, .. }) if valid == good);
                prop_assert!(matched);
            }
        }
    }
}
