//! Reading keys the way users and CI hold them: PEM files (`ocituf key generate`,
//! `openssl genpkey`), `env:VAR` with the PEM (or its base64) in an environment variable,
//! or `pkcs11:…` for a key that never leaves a hardware token ([`crate::pkcs11`]).

use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
use ocituf_resolver::ErrorKind;
use ocituf_tuf::crypto::{PrivateKey, PublicKey, Signer};
use p256::pkcs8::LineEnding;

use crate::error::{fail, Result, ResultExt as _};

/// A key that signs: in memory (from a file or the environment) or on a token.
pub type SigningKey = Box<dyn Signer>;

/// A key for signing from any key spec: `pkcs11:…` (RFC 7512) opens the key on its token,
/// anything else is read as by [`load_private`].
///
/// # Errors
/// As [`load_private`] and [`crate::pkcs11::Pkcs11Key::open`].
pub fn load_signer(spec: &str) -> Result<SigningKey> {
    if spec.starts_with("pkcs11:") {
        return Ok(Box::new(crate::pkcs11::Pkcs11Key::open(spec)?));
    }
    Ok(Box::new(load_private(spec)?))
}

/// Where a key comes from, for messages (never the key itself).
fn describe(spec: &str) -> String {
    if spec.starts_with("pkcs11:") {
        return format!("the token key {}", crate::pkcs11::Pkcs11Uri::redacted(spec));
    }
    match spec.strip_prefix("env:") {
        Some(var) => format!("the key in environment variable {var}"),
        None => format!("the key file {spec}"),
    }
}

/// The text of a key spec: a file, or `env:VAR` (PEM, or base64 of a PEM, as CI secret
/// stores often require).
fn read_spec(spec: &str) -> Result<String> {
    if let Some(var) = spec.strip_prefix("env:") {
        let value = std::env::var(var).map_err(|_| {
            fail(
                ErrorKind::Config,
                format!("environment variable {var} is not set (or not UTF-8): export the PEM key in it"),
            )
        })?;
        let trimmed = value.trim();
        if trimmed.starts_with("-----BEGIN") || trimmed.starts_with('{') {
            return Ok(value);
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(trimmed.replace(['\n', '\r', ' '], ""))
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| s.trim_start().starts_with("-----BEGIN"));
        return decoded.ok_or_else(|| {
            fail(
                ErrorKind::Config,
                format!("environment variable {var} holds neither a PEM key nor the base64 of one"),
            )
        });
    }
    let path = spec.strip_prefix("file:").unwrap_or(spec);
    std::fs::read_to_string(path).config(|| format!("could not read the key file {path}"))
}

/// A private key held in memory, from a PEM file or the environment.
pub fn load_private(spec: &str) -> Result<PrivateKey> {
    if spec.starts_with("pkcs11:") {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "{} stays on its token; this command needs a key in a file",
                describe(spec)
            ),
        ));
    }
    let text = read_spec(spec)?;
    if text.contains("PUBLIC KEY-----") {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "{} is a public key; signing needs the private key (PKCS#8 PEM)",
                describe(spec)
            ),
        ));
    }
    if text.contains("ENCRYPTED PRIVATE KEY") {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "{} is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN.pem)",
                describe(spec)
            ),
        ));
    }
    PrivateKey::from_pkcs8_pem(&text).config(|| {
        format!(
            "{} is not a PKCS#8 PEM private key of type ed25519, EC P-256 or RSA \
             (make one with `ocituf key generate` or `openssl genpkey`)",
            describe(spec)
        )
    })
}

/// A public key, from a public PEM (SubjectPublicKeyInfo), a private PEM, or a TUF key JSON
/// object.
pub fn load_public(spec: &str) -> Result<PublicKey> {
    if spec.starts_with("pkcs11:") {
        return Ok(load_signer(spec)?.public_key().clone());
    }
    let text = read_spec(spec)?;
    if text.contains("PRIVATE KEY-----") {
        return Ok(load_private(spec)?.public_key().clone());
    }
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(&text)
            .config(|| format!("{} is not a TUF public key object", describe(spec)));
    }
    public_from_spki_pem(&text).ok_or_else(|| {
        fail(
            ErrorKind::Config,
            format!(
                "{} is not a PEM public key of type ed25519, EC P-256 or RSA",
                describe(spec)
            ),
        )
    })
}

fn public_from_spki_pem(pem: &str) -> Option<PublicKey> {
    if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
        return Some(PublicKey::new(
            "ed25519",
            "ed25519",
            hex::encode(k.as_bytes()),
        ));
    }
    if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
        let pem = k.to_public_key_pem(LineEnding::LF).ok()?;
        return Some(PublicKey::new("ecdsa", "ecdsa-sha2-nistp256", pem));
    }
    if let Ok(k) = rsa::RsaPublicKey::from_public_key_pem(pem) {
        let pem = k.to_public_key_pem(LineEnding::LF).ok()?;
        return Some(PublicKey::new("rsa", "rsassa-pss-sha256", pem));
    }
    None
}

/// The public key as SubjectPublicKeyInfo PEM (what `openssl pkey -pubout` writes).
pub fn public_pem(key: &PublicKey) -> Result<String> {
    if key.keytype == "ed25519" {
        let bytes: [u8; 32] = hex::decode(key.keyval.public.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                fail(
                    ErrorKind::Config,
                    "the ed25519 public key is not 32 hex bytes",
                )
            })?;
        let k = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .config(|| "the ed25519 public key is not a valid point".to_owned())?;
        return k
            .to_public_key_pem(LineEnding::LF)
            .config(|| "could not encode the public key".to_owned());
    }
    Ok(key.keyval.public.clone())
}

/// The keyid a key has in metadata (securesystemslib's).
pub fn key_id(key: &PublicKey) -> Result<String> {
    Ok(key
        .compute_keyid()
        .config(|| "could not compute the keyid".to_owned())?
        .as_str()
        .to_owned())
}
