//! Opening the OCI repository a reference names: an OCI image-layout directory or a
//! registry, behind one [`ArtifactStore`].

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

/// Open the repository `repo` names.
///
/// # Errors
/// [`Error::OpenStore`] when the store cannot be opened (bad name, unsupported location).
pub fn open(repo: &RepositoryReference) -> Result<AnyStore, Error> {
    match &repo.location {
        Location::Layout(dir) => LayoutStore::new(dir.clone(), &repo.repository)
            .map(AnyStore::Layout)
            .map_err(|source| Error::OpenStore {
                repository: repo.to_string(),
                source,
            }),
        Location::Registry(_) => RegistryRepo::open(&repo.to_string(), RegistryOptions::default())
            .map(AnyStore::Registry)
            .map_err(|source| Error::OpenStore {
                repository: repo.to_string(),
                source: source.into(),
            }),
    }
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
