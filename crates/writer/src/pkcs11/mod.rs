//! Keys that never leave a hardware token: a [`Signer`] over PKCS#11 (`--key pkcs11:…`, RFC
//! 7512 URIs, see [`uri`]). Any role's key may live there: root, targets, delegated team
//! keys, and the online snapshot and timestamp keys of `ocituf serve`.
//!
//! Supported key types, with the TUF scheme each signs: EC P-256 (`ecdsa-sha2-nistp256`,
//! `CKM_ECDSA` over the SHA-256 digest, re-encoded as DER), Ed25519 (`ed25519`, `CKM_EDDSA`)
//! and RSA (`rsassa-pss-sha256`, `CKM_SHA256_RSA_PKCS_PSS` with a 32-byte salt, as
//! securesystemslib signs). The public key is read from the token's public-key object with
//! the same `CKA_ID` (or label), and every signature the token returns is checked against
//! it before it is used: a token that signs with another key than it claims fails here, not
//! in every client.
//!
//! A module is loaded and initialised once per process and shared by every key in it; each
//! key has its own session, behind a mutex (PKCS#11 sessions are not for concurrent use).

pub mod uri;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use ocituf_tuf::crypto::{KeyId, PublicKey, Signer, VerifyingKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use sha2::{Digest as _, Sha256};

use crate::error::{fail, Result};
use crate::ErrorKind;
pub use uri::Pkcs11Uri;

/// The environment variable naming the module when the URI has no `module-path`.
pub const MODULE_ENV: &str = "OCITUF_PKCS11_MODULE";
/// The environment variable holding the user PIN when the URI has no `pin-value` or
/// `pin-source`.
pub const PIN_ENV: &str = "OCITUF_PKCS11_PIN";

/// DER of the P-256 curve OID (1.2.840.10045.3.1.7), as `CKA_EC_PARAMS` holds it.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the Ed25519 OID (1.3.101.112).
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER PrintableString "edwards25519", which PKCS#11 3.0 also allows.
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    EcdsaP256,
    Ed25519,
    RsaPss,
}

/// A private key on a PKCS#11 token.
pub struct Pkcs11Key {
    session: Mutex<Session>,
    key: ObjectHandle,
    algorithm: Algorithm,
    public: PublicKey,
    verifying: VerifyingKey,
    key_id: KeyId,
    /// The URI without its PIN, for messages.
    shown: String,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("uri", &self.shown)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The modules loaded so far, by path: C_Initialize may run once per process.
fn module(path: &str) -> Result<Pkcs11> {
    static MODULES: OnceLock<Mutex<HashMap<String, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .map_err(|_| fail(ErrorKind::Config, "the PKCS#11 module table is poisoned"))?;
    if let Some(m) = modules.get(path) {
        return Ok(m.clone());
    }
    let p11 = Pkcs11::new(path).map_err(|e| {
        fail(
            ErrorKind::Config,
            format!(
                "could not load the PKCS#11 module {path}: {e} (is the token's package \
                 installed? SoftHSM2's module is /usr/lib/softhsm/libsofthsm2.so)"
            ),
        )
    })?;
    match p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(fail(
                ErrorKind::Config,
                format!("the PKCS#11 module {path} failed to initialise: {e}"),
            ))
        }
    }
    modules.insert(path.to_owned(), p11.clone());
    Ok(p11)
}

fn read_pin(uri: &Pkcs11Uri, shown: &str) -> Result<Option<AuthPin>> {
    if let Some(v) = &uri.pin_value {
        return Ok(Some(AuthPin::from(v.clone())));
    }
    if let Some(src) = &uri.pin_source {
        let path = src.strip_prefix("file:").unwrap_or(src);
        let text = std::fs::read_to_string(path).map_err(|e| {
            fail(
                ErrorKind::Config,
                format!("{shown}: could not read the PIN file {path}: {e}"),
            )
        })?;
        return Ok(Some(AuthPin::from(
            text.trim_end_matches(['\n', '\r']).to_owned(),
        )));
    }
    Ok(std::env::var(PIN_ENV).ok().map(AuthPin::from))
}

/// The one slot whose token matches the URI's token attributes.
fn find_slot(p11: &Pkcs11, uri: &Pkcs11Uri, shown: &str) -> Result<Slot> {
    let slots = p11.get_slots_with_initialized_token().map_err(|e| {
        fail(
            ErrorKind::Config,
            format!("{shown}: could not list the tokens: {e}"),
        )
    })?;
    let mut seen = Vec::new();
    let mut matching = Vec::new();
    for slot in slots {
        let Ok(info) = p11.get_token_info(slot) else {
            continue;
        };
        let same = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| w == have.trim_end())
        };
        let label = info.label().trim_end().to_owned();
        if same(&uri.token, &label)
            && same(&uri.manufacturer, info.manufacturer_id())
            && same(&uri.serial, info.serial_number())
            && same(&uri.model, info.model())
            && uri.slot_id.is_none_or(|id| id == slot.id())
        {
            matching.push(slot);
        }
        seen.push(format!("{label:?} (slot-id {})", slot.id()));
    }
    match matching.as_slice() {
        [one] => Ok(*one),
        [] => Err(fail(
            ErrorKind::Config,
            format!(
                "{shown}: no token matches; the module has {}",
                if seen.is_empty() {
                    "no initialised token (softhsm2-util --init-token makes one)".to_owned()
                } else {
                    format!("these tokens: {}", seen.join(", "))
                }
            ),
        )),
        many => Err(fail(
            ErrorKind::Config,
            format!(
                "{shown}: {} tokens match ({}); add token=, serial= or slot-id= to the URI",
                many.len(),
                seen.join(", ")
            ),
        )),
    }
}

fn attribute_bytes(attrs: Vec<Attribute>, want: AttributeType) -> Option<Vec<u8>> {
    attrs.into_iter().find_map(|a| match (a, want) {
        (Attribute::EcParams(v), AttributeType::EcParams)
        | (Attribute::EcPoint(v), AttributeType::EcPoint)
        | (Attribute::Id(v), AttributeType::Id)
        | (Attribute::Label(v), AttributeType::Label)
        | (Attribute::Modulus(v), AttributeType::Modulus)
        | (Attribute::PublicExponent(v), AttributeType::PublicExponent) => Some(v),
        _ => None,
    })
}

/// An EC point as the token gives it: DER OCTET STRING (PKCS#11 2.40) or raw bytes.
fn unwrap_point(point: &[u8], raw_len: usize) -> Option<&[u8]> {
    match point {
        [0x04, n, rest @ ..] if point.len() == raw_len + 2 && usize::from(*n) == raw_len => {
            Some(rest)
        }
        _ if point.len() == raw_len => Some(point),
        _ => None,
    }
}

impl Pkcs11Key {
    /// Open the key a `pkcs11:` URI names: load the module, find the token and the key, log
    /// in, and read the public key.
    ///
    /// # Errors
    /// A configuration error that names the URI (without its PIN) and what to change.
    pub fn open(spec: &str) -> Result<Self> {
        let shown = Pkcs11Uri::redacted(spec);
        let uri = Pkcs11Uri::parse(spec)?;
        let path = match &uri.module_path {
            Some(p) => p.clone(),
            None => std::env::var(MODULE_ENV).map_err(|_| {
                fail(
                    ErrorKind::Config,
                    format!(
                        "{shown}: which PKCS#11 module? add module-path=/path/to/module.so to \
                         the URI or set {MODULE_ENV}"
                    ),
                )
            })?,
        };
        let p11 = module(&path)?;
        let slot = find_slot(&p11, &uri, &shown)?;
        let session = p11.open_ro_session(slot).map_err(|e| {
            fail(
                ErrorKind::Config,
                format!("{shown}: could not open a session: {e}"),
            )
        })?;
        match read_pin(&uri, &shown)? {
            Some(pin) => match session.login(UserType::User, Some(&pin)) {
                Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(P11Error::Pkcs11(RvError::PinIncorrect, _)) => {
                    return Err(fail(
                        ErrorKind::Config,
                        format!(
                        "{shown}: the token refused the PIN (wrong PIN; too many tries lock it)"
                    ),
                    ))
                }
                Err(e) => {
                    return Err(fail(
                        ErrorKind::Config,
                        format!("{shown}: login failed: {e}"),
                    ))
                }
            },
            None => {
                return Err(fail(
                    ErrorKind::Config,
                    format!(
                        "{shown}: no PIN: add pin-source=file:PATH to the URI or set {PIN_ENV}"
                    ),
                ))
            }
        }
        let key = find_one(&session, ObjectClass::PRIVATE_KEY, &uri, &shown)?;
        let (algorithm, public) = read_public(&session, key, &uri, &shown)?;
        let key_id = public.compute_keyid().map_err(|e| {
            fail(
                ErrorKind::Config,
                format!("{shown}: could not compute the keyid: {e}"),
            )
        })?;
        let verifying = public.decode().map_err(|e| {
            fail(
                ErrorKind::Config,
                format!("{shown}: the token's public key does not decode: {e}"),
            )
        })?;
        Ok(Self {
            session: Mutex::new(session),
            key,
            algorithm,
            public,
            verifying,
            key_id,
            shown,
        })
    }
}

fn find_one(
    session: &Session,
    class: ObjectClass,
    uri: &Pkcs11Uri,
    shown: &str,
) -> Result<ObjectHandle> {
    let mut template = vec![Attribute::Class(class)];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    let what = if class == ObjectClass::PRIVATE_KEY {
        "private key"
    } else {
        "public key"
    };
    let found = session.find_objects(&template).map_err(|e| {
        fail(
            ErrorKind::Config,
            format!("{shown}: could not search the token: {e}"),
        )
    })?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(fail(
            ErrorKind::Config,
            format!(
                "{shown}: the token has no {what} with that object/id (pkcs11-tool --module \
                 MODULE --login --list-objects shows its keys)"
            ),
        )),
        many => Err(fail(
            ErrorKind::Config,
            format!(
                "{shown}: {} {what}s match; add id= to the URI to name one",
                many.len()
            ),
        )),
    }
}

/// The algorithm and TUF public key of private key `key`, from its public-key object.
fn read_public(
    session: &Session,
    key: ObjectHandle,
    uri: &Pkcs11Uri,
    shown: &str,
) -> Result<(Algorithm, PublicKey)> {
    let bad = |why: String| fail(ErrorKind::Config, format!("{shown}: {why}"));
    let attrs = session
        .get_attributes(key, &[AttributeType::KeyType, AttributeType::Id])
        .map_err(|e| bad(format!("could not read the key's attributes: {e}")))?;
    let key_type = attrs.iter().find_map(|a| match a {
        Attribute::KeyType(t) => Some(*t),
        _ => None,
    });
    // The public half: same CKA_ID as the private key (the usual pairing), else the URI's.
    let mut pair = uri.clone();
    if let Some(id) = attribute_bytes(attrs, AttributeType::Id).filter(|i| !i.is_empty()) {
        pair.id = Some(id);
        pair.object = None;
    }
    let public = find_one(session, ObjectClass::PUBLIC_KEY, &pair, shown)?;
    let get = |t: AttributeType| {
        session
            .get_attributes(public, &[t])
            .ok()
            .and_then(|a| attribute_bytes(a, t))
            .ok_or_else(|| bad(format!("the public key object has no {t}")))
    };
    match key_type {
        Some(KeyType::EC) => {
            let params = get(AttributeType::EcParams)?;
            if params != P256_PARAMS {
                return Err(bad(
                    "the EC key is not on curve P-256 (the one ECDSA curve TUF's ecdsa-sha2-nistp256 names)"
                        .to_owned(),
                ));
            }
            let point = get(AttributeType::EcPoint)?;
            let raw = unwrap_point(&point, 65)
                .ok_or_else(|| bad("the EC point is not an uncompressed P-256 point".to_owned()))?;
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(raw)
                .map_err(|e| bad(format!("the EC point is not on P-256: {e}")))?;
            let pem = vk
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| bad(format!("could not encode the public key: {e}")))?;
            Ok((
                Algorithm::EcdsaP256,
                PublicKey::new("ecdsa", "ecdsa-sha2-nistp256", pem),
            ))
        }
        Some(KeyType::EC_EDWARDS) => {
            let params = get(AttributeType::EcParams)?;
            if params != ED25519_OID && params != ED25519_NAME {
                return Err(bad("the EdDSA key is not an Ed25519 key".to_owned()));
            }
            let point = get(AttributeType::EcPoint)?;
            let raw = unwrap_point(&point, 32)
                .ok_or_else(|| bad("the Ed25519 public key is not 32 bytes".to_owned()))?;
            Ok((
                Algorithm::Ed25519,
                PublicKey::new("ed25519", "ed25519", hex::encode(raw)),
            ))
        }
        Some(KeyType::RSA) => {
            let n = get(AttributeType::Modulus)?;
            let e = get(AttributeType::PublicExponent)?;
            let pk = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&n),
                rsa::BigUint::from_bytes_be(&e),
            )
            .map_err(|e| bad(format!("the RSA public key is not usable: {e}")))?;
            let pem = rsa::pkcs8::EncodePublicKey::to_public_key_pem(&pk, LineEnding::LF)
                .map_err(|e| bad(format!("could not encode the public key: {e}")))?;
            Ok((
                Algorithm::RsaPss,
                PublicKey::new("rsa", "rsassa-pss-sha256", pem),
            ))
        }
        other => Err(bad(format!(
            "the key type {} cannot sign TUF metadata (use an EC P-256, Ed25519 or RSA key)",
            other.map_or_else(|| "(unknown)".to_owned(), |t| t.to_string())
        ))),
    }
}

fn sign_error(key_id: &KeyId, why: String) -> ocituf_tuf::error::Error {
    ocituf_tuf::error::Error::Sign {
        keyid: key_id.to_string(),
        source: why.into(),
    }
}

impl Signer for Pkcs11Key {
    fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ocituf_tuf::error::Error> {
        let session = self
            .session
            .lock()
            .map_err(|_| sign_error(&self.key_id, format!("{}: session poisoned", self.shown)))?;
        let token = |e: P11Error| sign_error(&self.key_id, format!("{}: {e}", self.shown));
        let sig = match self.algorithm {
            Algorithm::EcdsaP256 => {
                let digest = Sha256::digest(msg);
                let raw = session
                    .sign(&Mechanism::Ecdsa, self.key, &digest)
                    .map_err(token)?;
                let sig = p256::ecdsa::Signature::from_slice(&raw).map_err(|e| {
                    sign_error(
                        &self.key_id,
                        format!("{}: not an r||s signature: {e}", self.shown),
                    )
                })?;
                sig.to_der().as_bytes().to_vec()
            }
            Algorithm::Ed25519 => session
                .sign(
                    &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    self.key,
                    msg,
                )
                .map_err(token)?,
            Algorithm::RsaPss => session
                .sign(
                    &Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                        hash_alg: MechanismType::SHA256,
                        mgf: PkcsMgfType::MGF1_SHA256,
                        s_len: 32.into(),
                    }),
                    self.key,
                    msg,
                )
                .map_err(token)?,
        };
        drop(session);
        if !self.verifying.verify(msg, &sig) {
            return Err(sign_error(
                &self.key_id,
                format!(
                    "{}: the token's signature does not verify with its own public key",
                    self.shown
                ),
            ));
        }
        Ok(sig)
    }
}
