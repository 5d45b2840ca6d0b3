//! Keys, signatures and hashes.
//!
//! - [`PublicKey`]: the TUF key dict (`keytype`, `scheme`, `keyval`, unknown fields kept), and
//!   [`VerifyingKey`], its decoded form that checks signatures.
//! - [`KeyId`]: an opaque identifier. A declared keyid is never recomputed and compared:
//!   [`PublicKey::compute_keyid`] exists only to name new keys.
//! - [`Signer`] and [`PrivateKey`]: signing, in memory, with keys generated here or read from
//!   PKCS#8 PEM (what `openssl genpkey` writes).
//! - [`hash`]: the digests of files (`sha256`, `sha512`) and their checks.
//!
//! Supported: `ed25519`/`ed25519` (hex), `ecdsa` or `ecdsa-sha2-nistp256`/`ecdsa-sha2-nistp256`
//! (PEM SubjectPublicKeyInfo, DER signatures), `rsa`/`rsassa-pss-sha256` (any salt length
//! securesystemslib produces) and `rsa`/`rsa-pkcs1v15-sha256`. Other key types are carried in
//! metadata but never verify a signature.

pub mod hash;
mod keys;
pub(crate) mod signer;

pub use keys::{KeyId, PublicKey, VerifyingKey};
pub use signer::{KeyKind, PrivateKey, Signer};
