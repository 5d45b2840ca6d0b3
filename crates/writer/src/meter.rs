//! What a writer costs the store: every call a [`crate::MetaRepo`] makes, counted by kind,
//! with the bytes read and written. Tests assert bounds with it (signing into hash bins
//! costs the same at any number of bins) and benchmarks report it.
//!
//! One store call is one request on an OCI layout; on a registry it is one or a few HTTP
//! requests (an upload is a POST and a PUT, a fallback referrers index is read and written),
//! which [`ocituf_oci::RegistryClient::request_count`] counts.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use ocituf_oci::{ArtifactStore, Descriptor, Digest, Manifest, ManifestRef, ReferrersSource};

/// Store calls so far, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCalls {
    /// Referrers listings (one per role whose versions are listed).
    pub listings: u64,
    /// Blob and manifest reads (HEAD included).
    pub reads: u64,
    /// Blob and manifest writes and deletes.
    pub writes: u64,
    /// Bytes of blobs and manifests read.
    pub bytes_read: u64,
    /// Bytes of blobs and manifests written.
    pub bytes_written: u64,
}

impl StoreCalls {
    /// Every call, whatever its kind.
    pub fn total(&self) -> u64 {
        self.listings + self.reads + self.writes
    }

    /// The calls made since `earlier` (a copy taken before).
    #[must_use]
    pub fn since(&self, earlier: &StoreCalls) -> StoreCalls {
        StoreCalls {
            listings: self.listings - earlier.listings,
            reads: self.reads - earlier.reads,
            writes: self.writes - earlier.writes,
            bytes_read: self.bytes_read - earlier.bytes_read,
            bytes_written: self.bytes_written - earlier.bytes_written,
        }
    }
}

/// The counters a [`crate::MetaRepo`] keeps.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    listings: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

impl Meter {
    pub(crate) fn calls(&self) -> StoreCalls {
        StoreCalls {
            listings: self.listings.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A store whose calls are counted in a [`Meter`].
#[derive(Clone, Copy)]
pub(crate) struct Metered<'a, S> {
    pub(crate) store: &'a S,
    pub(crate) meter: &'a Meter,
}

impl<S: ArtifactStore> ArtifactStore for Metered<'_, S> {
    fn location(&self) -> String {
        self.store.location()
    }

    async fn get_blob(
        &self,
        digest: &Digest,
        max_len: u64,
    ) -> Result<Option<Vec<u8>>, ocituf_oci::Error> {
        Meter::add(&self.meter.reads, 1);
        let r = self.store.get_blob(digest, max_len).await;
        if let Ok(Some(b)) = &r {
            Meter::add(&self.meter.bytes_read, b.len());
        }
        r
    }

    fn put_blob(
        &self,
        bytes: &[u8],
    ) -> impl Future<Output = Result<Digest, ocituf_oci::Error>> + Send {
        Meter::add(&self.meter.writes, 1);
        Meter::add(&self.meter.bytes_written, bytes.len());
        self.store.put_blob(bytes)
    }

    async fn get_manifest(
        &self,
        reference: ManifestRef<'_>,
        max_len: u64,
    ) -> Result<Option<Manifest>, ocituf_oci::Error> {
        Meter::add(&self.meter.reads, 1);
        let r = self.store.get_manifest(reference, max_len).await;
        if let Ok(Some(m)) = &r {
            Meter::add(&self.meter.bytes_read, m.bytes.len());
        }
        r
    }

    fn head_manifest(
        &self,
        reference: ManifestRef<'_>,
    ) -> impl Future<Output = Result<Option<Descriptor>, ocituf_oci::Error>> + Send {
        Meter::add(&self.meter.reads, 1);
        self.store.head_manifest(reference)
    }

    fn put_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> impl Future<Output = Result<Digest, ocituf_oci::Error>> + Send {
        Meter::add(&self.meter.writes, 1);
        Meter::add(&self.meter.bytes_written, bytes.len());
        self.store.put_manifest(media_type, bytes, tag)
    }

    fn delete_manifest(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<(), ocituf_oci::Error>> + Send {
        Meter::add(&self.meter.writes, 1);
        self.store.delete_manifest(digest)
    }

    fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<Descriptor>, ReferrersSource), ocituf_oci::Error>> + Send
    {
        Meter::add(&self.meter.listings, 1);
        self.store.referrers(subject, artifact_type)
    }
}
