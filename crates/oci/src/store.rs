//! The storage boundary of the OCI side: blobs, manifests and referrers of one repository.
//!
//! Two implementations: a registry (`registry` module, native referrers API or the OCI
//! tag-schema fallback) and an OCI image-layout directory (`layout` module). Everything an
//! `ArtifactStore` returns is untrusted: callers check digests and signatures.

use std::collections::BTreeMap;
use std::future::Future;

/// A content digest, `sha256:<64 lowercase hex>` (the only algorithm ocituf writes; others are
/// carried opaquely and never trusted).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parse and validate `algorithm:hex`. Only `sha256` with 64 lowercase hex digits is
    /// accepted, so a digest can always be used safely in a path or a tag.
    ///
    /// # Errors
    /// When `s` is not a sha256 digest.
    pub fn parse(s: &str) -> Result<Self, crate::Error> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| crate::Error::InvalidDigest(s.to_owned()))?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(crate::Error::InvalidDigest(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::{Digest as _, Sha256};
        Self(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An OCI content descriptor, as found in an index, a referrers answer or a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

/// A manifest as received: its media type, its exact bytes, and the digest of those bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

/// A manifest reference within the store's repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRef<'a> {
    Tag(&'a str),
    Digest(&'a Digest),
}

/// How referrers of a subject were found (reported for diagnostics and request accounting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersSource {
    /// The registry's referrers API.
    Native,
    /// The OCI tag schema (`sha256-<hex>` index tag).
    TagSchemaFallback,
    /// A layout directory's own index.
    Layout,
}

/// Blobs, manifests and referrers of one OCI repository.
///
/// Every read takes a `max_len` and fails rather than reading more. Not found is `Ok(None)`.
pub trait ArtifactStore: Send + Sync {
    /// A human-readable name of the repository (`registry.example.com/acme/tuf`, `oci:./dir`).
    fn location(&self) -> String;

    fn get_blob(
        &self,
        digest: &Digest,
        max_len: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, crate::Error>> + Send;

    /// Upload `bytes` (a no-op when the blob exists) and return its digest.
    fn put_blob(&self, bytes: &[u8]) -> impl Future<Output = Result<Digest, crate::Error>> + Send;

    fn get_manifest(
        &self,
        reference: ManifestRef<'_>,
        max_len: u64,
    ) -> impl Future<Output = Result<Option<Manifest>, crate::Error>> + Send;

    /// The descriptor of a manifest without its body (HEAD).
    fn head_manifest(
        &self,
        reference: ManifestRef<'_>,
    ) -> impl Future<Output = Result<Option<Descriptor>, crate::Error>> + Send;

    /// Store a manifest (optionally tagged). When the manifest has a `subject`, the store
    /// makes it discoverable through `referrers(subject)`: natively, or by updating the
    /// tag-schema fallback index without losing entries written concurrently by others.
    fn put_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> impl Future<Output = Result<Digest, crate::Error>> + Send;

    /// Delete a manifest by digest (and remove it from the fallback index of its subject).
    fn delete_manifest(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<(), crate::Error>> + Send;

    /// The referrers of `subject`, filtered by `artifact_type` when given (applied locally
    /// when the registry does not filter).
    fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<Descriptor>, ReferrersSource), crate::Error>> + Send;
}

/// Implements `ArtifactStore` for a pointer type by forwarding every method to the pointee,
/// so the two impls below cannot drift apart.
macro_rules! forward_artifact_store {
    ($(#[$doc:meta])* $ty:ty) => {
        $(#[$doc])*
        impl<S: ArtifactStore + ?Sized> ArtifactStore for $ty {
    fn location(&self) -> String {
        (**self).location()
    }

    fn get_blob(
        &self,
        digest: &Digest,
        max_len: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, crate::Error>> + Send {
        (**self).get_blob(digest, max_len)
    }

    fn put_blob(&self, bytes: &[u8]) -> impl Future<Output = Result<Digest, crate::Error>> + Send {
        (**self).put_blob(bytes)
    }

    fn get_manifest(
        &self,
        reference: ManifestRef<'_>,
        max_len: u64,
    ) -> impl Future<Output = Result<Option<Manifest>, crate::Error>> + Send {
        (**self).get_manifest(reference, max_len)
    }

    fn head_manifest(
        &self,
        reference: ManifestRef<'_>,
    ) -> impl Future<Output = Result<Option<Descriptor>, crate::Error>> + Send {
        (**self).head_manifest(reference)
    }

    fn put_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> impl Future<Output = Result<Digest, crate::Error>> + Send {
        (**self).put_manifest(media_type, bytes, tag)
    }

    fn delete_manifest(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<(), crate::Error>> + Send {
        (**self).delete_manifest(digest)
    }

    fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<Descriptor>, ReferrersSource), crate::Error>> + Send {
        (**self).referrers(subject, artifact_type)
    }
        }
    };
}

forward_artifact_store!(
    /// A shared reference to a store is a store (one store behind several sources/publishers).
    &S
);
forward_artifact_store!(
    /// A shared store is a store (one store behind several tasks).
    std::sync::Arc<S>
);
