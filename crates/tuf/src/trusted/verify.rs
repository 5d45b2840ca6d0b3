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
        let mut counted = BTreeSet::new();
        for (keyid, key) in &self.keys {
            let Some(sig) = envelope.signatures.iter().find(|s| &s.keyid == keyid) else {
                continue;
            };
            if sig.sig.is_empty() {
                continue;
            }
            let Ok(sig) = hex::decode(&sig.sig) else {
                continue;
            };
            let fingerprint = key.fingerprint();
            if counted.contains(&fingerprint) {
                continue;
            }
            if key.verify(signed_bytes, &sig) {
                counted.insert(fingerprint);
            }
        }
        let valid = u32::try_from(counted.len()).unwrap_or(u32::MAX);
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
