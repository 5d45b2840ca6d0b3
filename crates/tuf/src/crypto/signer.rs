//! Signing: the [`Signer`] trait and in-memory private keys.

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use sha2::{Digest as _, Sha256};

use super::keys::{KeyId, PublicKey};
use crate::error::Error;

/// Something that signs metadata: an in-memory [`PrivateKey`], or an HSM, a KMS, another
/// process. The signature is over the canonical JSON of the `signed` value.
pub trait Signer: Send + Sync {
    /// The keyid this signer's signatures carry.
    fn key_id(&self) -> &KeyId;
    /// The public key, as it appears in root or delegating targets metadata.
    fn public_key(&self) -> &PublicKey;
    /// Sign `msg`; the result is hex-encoded into the metadata by the caller.
    ///
    /// # Errors
    /// [`Error::Sign`] when the signer fails.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error>;
}

/// Which kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// `ed25519` / `ed25519`.
    Ed25519,
    /// `ecdsa` / `ecdsa-sha2-nistp256`.
    EcdsaP256,
    /// `rsa` / `rsassa-pss-sha256` with a 3072-bit modulus.
    RsaPss,
}

enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    EcdsaP256(p256::ecdsa::SigningKey),
    RsaPss(Box<rsa::RsaPrivateKey>),
}

/// A private key held in memory, with its public key and keyid.
pub struct PrivateKey {
    secret: Secret,
    public: PublicKey,
    key_id: KeyId,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("PrivateKey")
            .field("key_id", &self.key_id)
            .field("keytype", &self.public.keytype)
            .finish_non_exhaustive()
    }
}

fn key_error(keytype: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Key {
        keytype: keytype.to_owned(),
        source: Box::new(e),
    }
}

impl PrivateKey {
    /// Generate a new key from the operating system's random source.
    ///
    /// # Errors
    /// [`Error::Key`] if the key cannot be generated or encoded.
    pub fn generate(kind: KeyKind) -> Result<Self, Error> {
        let mut rng = rand_core::OsRng;
        let secret = match kind {
            KeyKind::Ed25519 => Secret::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
            KeyKind::EcdsaP256 => Secret::EcdsaP256(p256::ecdsa::SigningKey::random(&mut rng)),
            KeyKind::RsaPss => Secret::RsaPss(Box::new(
                rsa::RsaPrivateKey::new(&mut rng, 3072).map_err(|e| key_error("rsa", e))?,
            )),
        };
        Self::from_secret(secret)
    }

    /// An Ed25519 key from its 32-byte seed (deterministic keys for tests and fixtures).
    ///
    /// # Errors
    /// [`Error::Key`] if the public key cannot be encoded (never for Ed25519).
    pub fn ed25519_from_seed(seed: [u8; 32]) -> Result<Self, Error> {
        Self::from_secret(Secret::Ed25519(ed25519_dalek::SigningKey::from_bytes(
            &seed,
        )))
    }

    /// Read a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey`
    /// writes) of type Ed25519, EC P-256 or RSA (RSA keys sign with `rsassa-pss-sha256`).
    ///
    /// # Errors
    /// [`Error::Key`] if the PEM is not an unencrypted PKCS#8 key of a supported type.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        let secret = if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            Secret::Ed25519(k)
        } else if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            Secret::EcdsaP256(k)
        } else {
            let k = rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| {
                key_error("private", e) // neither ed25519, p-256 nor rsa
            })?;
            Secret::RsaPss(Box::new(k))
        };
        Self::from_secret(secret)
    }

    /// The key as PKCS#8 PEM, readable by `openssl pkey` and by [`Self::from_pkcs8_pem`].
    ///
    /// # Errors
    /// [`Error::Key`] if encoding fails.
    pub fn to_pkcs8_pem(&self) -> Result<String, Error> {
        let pem = match &self.secret {
            Secret::Ed25519(k) => k.to_pkcs8_pem(LineEnding::LF),
            Secret::EcdsaP256(k) => k.to_pkcs8_pem(LineEnding::LF),
            Secret::RsaPss(k) => k.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|e| key_error(&self.public.keytype, e))?;
        Ok(pem.to_string())
    }

    /// Use another keyid than the securesystemslib one (for keys declared elsewhere).
    #[must_use]
    pub fn with_key_id(mut self, key_id: KeyId) -> Self {
        self.key_id = key_id;
        self
    }

    fn from_secret(secret: Secret) -> Result<Self, Error> {
        let public = match &secret {
            Secret::Ed25519(k) => PublicKey::new(
                "ed25519",
                "ed25519",
                hex::encode(k.verifying_key().as_bytes()),
            ),
            Secret::EcdsaP256(k) => PublicKey::new(
                "ecdsa",
                "ecdsa-sha2-nistp256",
                k.verifying_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| key_error("ecdsa", e))?,
            ),
            Secret::RsaPss(k) => PublicKey::new(
                "rsa",
                "rsassa-pss-sha256",
                k.to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| key_error("rsa", e))?,
            ),
        };
        let key_id = public.compute_keyid()?;
        Ok(PrivateKey {
            secret,
            public,
            key_id,
        })
    }
}

impl Signer for PrivateKey {
    fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.secret {
            Secret::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                Ok(k.sign(msg).to_bytes().to_vec())
            }
            Secret::EcdsaP256(k) => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_der().as_bytes().to_vec())
            }
            Secret::RsaPss(k) => {
                // securesystemslib signs with salt length = digest length.
                let hashed = Sha256::digest(msg);
                k.sign_with_rng(
                    &mut rand_core::OsRng,
                    rsa::Pss::new_with_salt::<Sha256>(32),
                    &hashed,
                )
                .map_err(|e| Error::Sign {
                    keyid: self.key_id.to_string(),
                    source: Box::new(e),
                })
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
