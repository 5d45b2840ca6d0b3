//! The repository side: make, sign and re-sign metadata.
//!
//! [`sign`] turns a role's `signed` value into a signed file; [`add_signature`] appends a
//! signature to received bytes without touching `signed` (threshold signing by several key
//! holders, each with their own copy). [`crate::repo::Repository`] builds on these to create
//! and edit a whole repository. Files are written as sorted, compact, valid JSON
//! ([`crate::cjson::to_json`]); signatures are over the canonical form of `signed`.
//!
//! This module does no I/O and does not publish: callers store the bytes.

use std::collections::BTreeMap;

use crate::cjson::Value;
use crate::crypto::Signer;
use crate::error::Error;
use crate::metadata::{Envelope, Role, Signature};

/// Sign a role with each signer; returns the canonical bytes of the file.
///
/// # Errors
/// [`Error::Schema`] or [`Error::Canonical`] if the role cannot be serialised,
/// [`Error::Sign`] if a signer fails.
pub fn sign<R: Role>(role: &R, signers: &[&dyn Signer]) -> Result<Vec<u8>, Error> {
    let mut envelope = Envelope {
        signed: role.to_signed()?,
        signatures: Vec::new(),
        extra: BTreeMap::new(),
    };
    sign_envelope(&mut envelope, signers)?;
    envelope.to_bytes()
}

/// Add (or replace) the signatures of `signers` on an envelope, over its `signed` value as is.
///
/// # Errors
/// [`Error::Canonical`], [`Error::Sign`].
pub fn sign_envelope(envelope: &mut Envelope, signers: &[&dyn Signer]) -> Result<(), Error> {
    let msg = envelope.signed_bytes()?;
    for signer in signers {
        let sig = hex::encode(signer.sign(&msg)?);
        envelope.signatures.retain(|s| s.keyid != *signer.key_id());
        envelope.signatures.push(Signature {
            keyid: signer.key_id().clone(),
            sig,
            extra: BTreeMap::new(),
        });
    }
    Ok(())
}

/// Add `signer`'s signature to metadata bytes made by someone else: the `signed` value is
/// kept exactly as received (unknown fields included), so all signatures cover the same
/// canonical bytes. An earlier signature by the same keyid is replaced.
///
/// # Errors
/// [`Error::Json`]/[`Error::Schema`] for bytes that are not metadata, [`Error::Sign`].
pub fn add_signature(bytes: &[u8], signer: &dyn Signer) -> Result<Vec<u8>, Error> {
    let mut envelope = Envelope::parse("the", bytes)?;
    sign_envelope(&mut envelope, &[signer])?;
    envelope.to_bytes()
}

/// An unsigned envelope around a role (to sign later, or to hand to other key holders).
///
/// # Errors
/// [`Error::Schema`].
pub fn unsigned<R: Role>(role: &R) -> Result<Envelope, Error> {
    Ok(Envelope {
        signed: role.to_signed()?,
        signatures: Vec::new(),
        extra: BTreeMap::<String, Value>::new(),
    })
}
