//! Opening the OCI repository a reference names: an OCI image-layout directory or a
//! registry, behind one [`ArtifactStore`].

use std::path::Path;

use ocituf_oci::registry::ReferrersCapability;
use ocituf_oci::{
    ArtifactStore, Descriptor, Digest, LayoutStore, Manifest, ManifestRef, ReferrersSource,
    RegistryOptions, RegistryRepo,
};

use crate::error::Error;
use crate::reference::{Location, RepositoryReference};

/// Any of the stores ocituf can read and write.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyStore {
    Layout(LayoutStore),
    Registry(RegistryRepo),
}

/// Open the repository `repo` names, with the default registry options.
///
/// # Errors
/// [`Error::OpenStore`] when the store cannot be opened (bad name, unsupported location).
pub fn open(repo: &RepositoryReference) -> Result<AnyStore, Error> {
    open_with(repo, &RegistryOptions::default())
}

/// Open the repository `repo` names; a registry is reached with `registry` (TLS roots,
/// transport, credentials).
///
/// # Errors
/// [`Error::OpenStore`] when the store cannot be opened (bad name, unsupported location,
/// unreadable CA file).
pub fn open_with(
    repo: &RepositoryReference,
    registry: &RegistryOptions,
) -> Result<AnyStore, Error> {
    match &repo.location {
        Location::Layout(dir) => LayoutStore::new(dir.clone(), &repo.repository)
            .map(AnyStore::Layout)
            .map_err(|source| Error::OpenStore {
                repository: repo.to_string(),
                source,
            }),
        Location::Registry(_) => RegistryRepo::open(&repo.to_string(), registry.clone())
            .map(AnyStore::Registry)
            .map_err(|source| Error::OpenStore {
                repository: repo.to_string(),
                source: source.into(),
            }),
    }
}

/// The file, in the cache directory of one root of trust, that remembers the registry's
/// referrers support between processes.
const CAPABILITY_FILE: &str = "referrers-capability";

impl AnyStore {
    /// Tell a registry store what an earlier process learnt about its referrers support
    /// (the file in `cache`), so that a warm verification skips the detection request.
    /// Returns whether a capability was remembered.
    ///
    /// # Security
    /// The file is untrusted input: anything but the two known values is ignored. A wrong
    /// value costs at most a request or a retry (see `Resolver::resolve`): the listing it
    /// leads to is verified by TUF like any other.
    pub fn remember_referrers_capability(&self, cache: &Path) -> bool {
        let AnyStore::Registry(repo) = self else {
            return false;
        };
        let Ok(bytes) = read_small(&cache.join(CAPABILITY_FILE)) else {
            return false;
        };
        let capability = match bytes.trim_ascii() {
            b"native" => ReferrersCapability::Native,
            b"tag-schema-fallback" => ReferrersCapability::TagSchemaFallback,
            _ => return false,
        };
        repo.set_referrers_capability(capability);
        true
    }

    /// Write what this store learnt about the registry's referrers support into `cache`
    /// for the next process; forget it when unknown. Failures are ignored: the next
    /// process only detects again.
    pub fn save_referrers_capability(&self, cache: &Path) {
        let AnyStore::Registry(repo) = self else {
            return;
        };
        let path = cache.join(CAPABILITY_FILE);
        let text: &[u8] = match repo.referrers_capability() {
            ReferrersCapability::Native => b"native\n",
            ReferrersCapability::TagSchemaFallback => b"tag-schema-fallback\n",
            _ => {
                let _ = std::fs::remove_file(&path);
                return;
            }
        };
        if read_small(&path).is_ok_and(|old| old == text) {
            return;
        }
        // Write aside and rename, so a concurrent reader sees the old or the new file.
        let tmp = cache.join(format!("{CAPABILITY_FILE}.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, text).is_err() || std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// Forget the remembered referrers support, here and in `cache`: detect again.
    pub fn forget_referrers_capability(&self, cache: &Path) {
        if let AnyStore::Registry(repo) = self {
            repo.set_referrers_capability(ReferrersCapability::Unknown);
            let _ = std::fs::remove_file(cache.join(CAPABILITY_FILE));
        }
    }
}

/// A cache file of at most 64 bytes (anything longer is not ours).
fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    std::fs::File::open(path)?.take(65).read_to_end(&mut out)?;
    if out.len() > 64 {
        return Err(std::io::Error::other("too long"));
    }
    Ok(out)
}

impl ArtifactStore for AnyStore {
    fn location(&self) -> String {
        match self {
            AnyStore::Layout(s) => s.location(),
            AnyStore::Registry(s) => s.location(),
        }
    }

    async fn get_blob(
        &self,
        digest: &Digest,
        max_len: u64,
    ) -> Result<Option<Vec<u8>>, ocituf_oci::Error> {
        match self {
            AnyStore::Layout(s) => s.get_blob(digest, max_len).await,
            AnyStore::Registry(s) => s.get_blob(digest, max_len).await,
        }
    }

    async fn put_blob(&self, bytes: &[u8]) -> Result<Digest, ocituf_oci::Error> {
        match self {
            AnyStore::Layout(s) => s.put_blob(bytes).await,
            AnyStore::Registry(s) => s.put_blob(bytes).await,
        }
    }

    async fn get_manifest(
        &self,
        reference: ManifestRef<'_>,
        max_len: u64,
    ) -> Result<Option<Manifest>, ocituf_oci::Error> {
        match self {
            AnyStore::Layout(s) => s.get_manifest(reference, max_len).await,
            AnyStore::Registry(s) => s.get_manifest(reference, max_len).await,
        }
    }

    async fn head_manifest(
        &self,
        reference: ManifestRef<'_>,
    ) -> Result<Option<Descriptor>, ocituf_oci::Error> {
        match self {
            AnyStore::Layout(s) => s.head_manifest(reference).await,
            AnyStore::Registry(s) => s.head_manifest(reference).await,
        }
    }

    async fn put_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Digest, ocituf_oci::Error> {
        match self {
            AnyStore::Layout(s) => s.put_manifest(media_type, bytes, tag).await,
            AnyStore::Registry(s) => s.put_manifest(media_type, bytes, tag).await,
        }
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<(), ocituf_oci::Error> {
        match self {
            AnyStore::Layout(s) => s.delete_manifest(digest).await,
            AnyStore::Registry(s) => s.delete_manifest(digest).await,
        }
    }

    async fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<(Vec<Descriptor>, ReferrersSource), ocituf_oci::Error> {
        match self {
            AnyStore::Layout(s) => s.referrers(subject, artifact_type).await,
            AnyStore::Registry(s) => s.referrers(subject, artifact_type).await,
        }
    }
}
