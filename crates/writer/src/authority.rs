//! How role versions are signed and checked: the authority (keys and threshold) that a
//! verified delegator names for a role, counting valid signatures over the exact signed
//! bytes, and signing new versions.

use std::collections::BTreeMap;

use ocituf_tuf::crypto::{KeyId, PublicKey, Signer};
use ocituf_tuf::metadata::{Envelope, Root, Signature};

use crate::error::{Result, ResultExt as _};

/// Sign `signed` with every signer; the file bytes as ocituf writes them (canonical JSON).
pub fn sign_envelope(
    signed: serde_json::Value,
    signers: &[&dyn Signer],
    keep: Vec<Signature>,
) -> Result<(Envelope, Vec<u8>)> {
    let mut env = Envelope {
        signed,
        signatures: keep,
        extra: BTreeMap::new(),
    };
    let msg = env
        .signed_bytes()
        .config(|| "could not serialise metadata".to_owned())?;
    for s in signers {
        env.signatures.retain(|sig| sig.keyid != *s.key_id());
        let sig = s
            .sign(&msg)
            .config(|| format!("key {} could not sign", s.key_id()))?;
        env.signatures.push(Signature {
            keyid: s.key_id().clone(),
            sig: hex::encode(sig),
            extra: BTreeMap::new(),
        });
    }
    let bytes = file_bytes(&env)?;
    Ok((env, bytes))
}

/// The bytes of a metadata file, as `ocituf-tuf` writes them (valid JSON; signatures are
/// over the canonical form of `signed`, which any reader recomputes).
pub fn file_bytes(env: &Envelope) -> Result<Vec<u8>> {
    env.to_bytes()
        .config(|| "could not serialise metadata".to_owned())
}

/// How many distinct keys of `keyids` made a valid signature over the envelope.
///
/// # Security
/// Counts each authorised key once; signatures by unknown keys, empty or bad signatures
/// count for nothing (TUF 5.3.4 / 5.6.3 threshold rules).
pub fn valid_signatures(
    env: &Envelope,
    keys: &BTreeMap<KeyId, PublicKey>,
    keyids: &[KeyId],
) -> u32 {
    let Ok(msg) = env.signed_bytes() else {
        return 0;
    };
    let mut counted: Vec<&KeyId> = Vec::new();
    for sig in &env.signatures {
        if sig.sig.is_empty() || !keyids.contains(&sig.keyid) || counted.contains(&&sig.keyid) {
            continue;
        }
        let (Some(key), Ok(raw)) = (keys.get(&sig.keyid), hex::decode(&sig.sig)) else {
            continue;
        };
        if key.decode().is_ok_and(|k| k.verify(&msg, &raw)) {
            counted.push(&sig.keyid);
        }
    }
    u32::try_from(counted.len()).unwrap_or(u32::MAX)
}

/// The keys and threshold that sign `role`, from the verified delegator.
#[derive(Debug, Clone)]
pub struct Authority {
    pub keys: BTreeMap<KeyId, PublicKey>,
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
}

impl Authority {
    pub fn of_top_level(root: &Root, role: &str) -> Result<Self> {
        let rk = root
            .role(role)
            .config(|| format!("root has no {role} role"))?;
        Ok(Self {
            keys: root.keys.clone(),
            keyids: rk.keyids.clone(),
            threshold: rk.threshold,
        })
    }

    pub fn satisfied_by(&self, env: &Envelope) -> bool {
        valid_signatures(env, &self.keys, &self.keyids) >= self.threshold
    }
}
