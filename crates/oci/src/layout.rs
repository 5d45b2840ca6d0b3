//! An OCI image-layout directory as an [`ArtifactStore`] (`oci:DIR`, as skopeo names it):
//! the embedded default and the air-gap format (docs/oci-mapping.md section 9).
//!
//! One directory plays the role of a whole registry. Tag `T` of repository `R` is the
//! `index.json` entry annotated `org.opencontainers.image.ref.name` = `R:T` (what
//! `skopeo copy … oci:DIR:R:T` writes); blobs are shared by all repositories. A
//! [`LayoutStore`] is bound to one directory and one repository.
//!
//! Referrers are the layout's own bookkeeping: every manifest with a `subject` gets an
//! `index.json` entry with its `artifactType`, its annotations and `io.ocituf.subject` /
//! `io.ocituf.repository`.
//!
//! Writes are atomic (temp file, fsync, rename, fsync of the directory) and safe with
//! several writers: every read-modify-write of `index.json` holds an exclusive advisory lock
//! on `DIR/.ocituf-index.lock` (a file never replaced, so the lock is on a stable inode).
//! Everything read is untrusted: sizes are bounded, every blob read is checked against its
//! digest, and a malformed `index.json` is an error naming the file.
//!
//! Not done here: referrers written by other tools without the bookkeeping annotations are
//! not found; deleting a manifest removes its index entries, and
//! [`LayoutStore::collect_garbage`] removes blobs nothing reaches any more.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::mapping::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, MAX_MANIFEST_LEN};
use crate::ocijson::{RawDescriptor, RawIndex, RawManifest};
use crate::store::{ArtifactStore, Descriptor, Digest, Manifest, ManifestRef, ReferrersSource};
use crate::Error;
use ocituf_tuf::fsio::{self, FileError};

/// The annotation that names a tag in `index.json` (OCI image spec, skopeo).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// Bookkeeping: the subject of a referrer entry.
pub const SUBJECT_ANNOTATION: &str = "io.ocituf.subject";
/// Bookkeeping: the repository of an untagged entry.
pub const REPOSITORY_ANNOTATION: &str = "io.ocituf.repository";
/// The repository `oci:DIR` names when no repository is given.
pub const DEFAULT_REPOSITORY: &str = "tuf";
/// Largest `index.json` read.
pub const MAX_INDEX_LEN: u64 = 32 * 1024 * 1024;
/// The lock file held around every read-modify-write of `index.json`.
pub const LOCK_FILE: &str = ".ocituf-index.lock";

const LAYOUT_FILE_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image-layout directory, seen as one repository of a registry.
#[derive(Debug, Clone)]
pub struct LayoutStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    repository: String,
}

/// Owned form of [`ManifestRef`], to move into a blocking task.
enum OwnedRef {
    Tag(String),
    Digest(Digest),
}

impl LayoutStore {
    /// A store for `repository` inside the layout directory `dir` (created on first write).
    ///
    /// # Errors
    /// When `repository` is not a valid OCI repository name.
    pub fn new(dir: impl Into<PathBuf>, repository: &str) -> Result<Self, Error> {
        check_repository(repository)?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.into(),
                repository: repository.to_owned(),
            }),
        })
    }

    /// Parse `oci:DIR` (repository [`DEFAULT_REPOSITORY`]) or `oci:DIR:REPOSITORY`; the
    /// directory ends at the first `:`, as in skopeo.
    ///
    /// # Errors
    /// When `location` does not start with `oci:`, has an empty directory or an invalid
    /// repository.
    pub fn parse_location(location: &str) -> Result<Self, Error> {
        let rest = location
            .strip_prefix("oci:")
            .ok_or_else(|| Error::InvalidLayoutLocation(location.to_owned()))?;
        let (dir, repository) = rest.split_once(':').unwrap_or((rest, DEFAULT_REPOSITORY));
        if dir.is_empty() {
            return Err(Error::InvalidLayoutLocation(location.to_owned()));
        }
        Self::new(dir, repository)
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn repository(&self) -> &str {
        &self.inner.repository
    }

    /// Delete every blob that no `index.json` entry reaches (through manifests, indexes,
    /// configs and layers; subjects are not followed). Returns how many were deleted.
    ///
    /// # Errors
    /// On I/O errors or a malformed `index.json`.
    pub async fn collect_garbage(&self) -> Result<usize, Error> {
        self.blocking(Inner::collect_garbage).await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(Error::Task)?
    }
}

impl ArtifactStore for LayoutStore {
    fn location(&self) -> String {
        format!("oci:{}:{}", self.inner.dir.display(), self.inner.repository)
    }

    async fn get_blob(&self, digest: &Digest, max_len: u64) -> Result<Option<Vec<u8>>, Error> {
        let digest = digest.clone();
        self.blocking(move |s| s.read_blob(&digest, max_len)).await
    }

    async fn put_blob(&self, bytes: &[u8]) -> Result<Digest, Error> {
        let bytes = bytes.to_vec();
        self.blocking(move |s| s.write_blob(&bytes)).await
    }

    async fn get_manifest(
        &self,
        reference: ManifestRef<'_>,
        max_len: u64,
    ) -> Result<Option<Manifest>, Error> {
        let reference = owned(&reference);
        self.blocking(move |s| s.get_manifest(&reference, max_len))
            .await
    }

    async fn head_manifest(&self, reference: ManifestRef<'_>) -> Result<Option<Descriptor>, Error> {
        let reference = owned(&reference);
        self.blocking(move |s| {
            Ok(s.get_manifest(&reference, MAX_MANIFEST_LEN)?
                .map(|m| Descriptor {
                    size: m.bytes.len() as u64,
                    media_type: m.media_type,
                    digest: m.digest,
                    artifact_type: None,
                    annotations: BTreeMap::new(),
                }))
        })
        .await
    }

    async fn put_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Digest, Error> {
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        let media_type = media_type.to_owned();
        let bytes = bytes.to_vec();
        let tag = tag.map(str::to_owned);
        self.blocking(move |s| s.put_manifest(&media_type, &bytes, tag.as_deref()))
            .await
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<(), Error> {
        let digest = digest.clone();
        self.blocking(move |s| s.delete_manifest(&digest)).await
    }

    async fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<(Vec<Descriptor>, ReferrersSource), Error> {
        let subject = subject.clone();
        let artifact_type = artifact_type.map(str::to_owned);
        let list = self
            .blocking(move |s| s.referrers(&subject, artifact_type.as_deref()))
            .await?;
        Ok((list, ReferrersSource::Layout))
    }
}

fn owned(r: &ManifestRef<'_>) -> OwnedRef {
    match *r {
        ManifestRef::Tag(t) => OwnedRef::Tag(t.to_owned()),
        ManifestRef::Digest(d) => OwnedRef::Digest(d.clone()),
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io { op, path, source }
}

impl Inner {
    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    fn blob_dir(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        // Digest::parse admits only 64 lowercase hex digits: safe as a file name.
        self.blob_dir().join(digest.hex())
    }

    fn ref_name(&self, tag: &str) -> String {
        format!("{}:{tag}", self.repository)
    }

    /// Whether an index entry belongs to this store's repository.
    fn owns(&self, entry: &RawDescriptor) -> bool {
        let ann = entry.annotations.as_ref();
        let by_tag = ann
            .and_then(|a| a.get(REF_NAME_ANNOTATION))
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(repo, _)| repo == self.repository);
        let by_bookkeeping = ann
            .and_then(|a| a.get(REPOSITORY_ANNOTATION))
            .is_some_and(|r| *r == self.repository);
        by_tag || by_bookkeeping
    }

    /// Read a blob, bounded, and check its digest. Not found is `Ok(None)`.
    fn read_blob(&self, digest: &Digest, max_len: u64) -> Result<Option<Vec<u8>>, Error> {
        let path = self.blob_path(digest);
        let Some(bytes) = read_bounded(&path, max_len, || format!("blob {digest}"))? else {
            return Ok(None);
        };
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", path.display()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(Some(bytes))
    }

    fn ensure_layout(&self) -> Result<(), Error> {
        let blobs = self.blob_dir();
        fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
        let layout = self.dir.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, LAYOUT_FILE_CONTENT)?;
        }
        Ok(())
    }

    fn write_blob(&self, bytes: &[u8]) -> Result<Digest, Error> {
        self.ensure_layout()?;
        let digest = Digest::of(bytes);
        // An existing blob is kept only when it really has this content: a corrupt file is
        // replaced, never trusted.
        match self.read_blob(&digest, bytes.len() as u64) {
            Ok(Some(_)) => return Ok(digest),
            Ok(None) | Err(Error::DigestMismatch { .. } | Error::TooLarge { .. }) => {}
            Err(e) => return Err(e),
        }
        write_atomic(&self.blob_path(&digest), bytes)?;
        Ok(digest)
    }

    fn read_index(&self) -> Result<RawIndex, Error> {
        let path = self.index_path();
        let Some(bytes) = read_bounded(&path, MAX_INDEX_LEN, || "index.json".to_owned())? else {
            return Ok(RawIndex {
                schema_version: 2,
                media_type: Some(INDEX_MEDIA_TYPE.to_owned()),
                manifests: Vec::new(),
                other: BTreeMap::new(),
            });
        };
        let index: RawIndex =
            serde_json::from_slice(&bytes).map_err(|source| Error::LayoutIndex {
                path: path.clone(),
                reason: "not an OCI image index".to_owned(),
                source: Some(source),
            })?;
        if index.schema_version != 2 {
            return Err(Error::LayoutIndex {
                path,
                reason: format!("schemaVersion is {}, expected 2", index.schema_version),
                source: None,
            });
        }
        Ok(index)
    }

    fn write_index(&self, index: &RawIndex) -> Result<(), Error> {
        let bytes = serde_json::to_vec(index).map_err(|source| Error::LayoutIndex {
            path: self.index_path(),
            reason: "cannot serialize".to_owned(),
            source: Some(source),
        })?;
        write_atomic(&self.index_path(), &bytes)
    }

    /// Run `f` on `index.json` under the exclusive lock, and write the result back when `f`
    /// says it changed something.
    fn modify_index<T>(
        &self,
        f: impl FnOnce(&mut RawIndex) -> Result<(bool, T), Error>,
    ) -> Result<T, Error> {
        self.ensure_layout()?;
        let lock_path = self.dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        // The lock is released when `lock` is dropped, also on every error path.
        lock.lock().map_err(io_err("lock", &lock_path))?;
        let mut index = self.read_index()?;
        let (changed, out) = f(&mut index)?;
        if changed {
            self.write_index(&index)?;
        }
        drop(lock);
        Ok(out)
    }

    fn get_manifest(&self, reference: &OwnedRef, max_len: u64) -> Result<Option<Manifest>, Error> {
        let max_len = max_len.min(MAX_MANIFEST_LEN);
        let (digest, entry_media_type) = match reference {
            OwnedRef::Tag(tag) => {
                let ref_name = self.ref_name(tag);
                let index = self.read_index()?;
                let Some(entry) = index.manifests.iter().rev().find(|e| {
                    e.annotations
                        .as_ref()
                        .and_then(|a| a.get(REF_NAME_ANNOTATION))
                        .is_some_and(|r| *r == ref_name)
                }) else {
                    return Ok(None);
                };
                let digest = Digest::parse(&entry.digest).map_err(|_| Error::LayoutIndex {
                    path: self.index_path(),
                    reason: format!("entry {ref_name:?} has an invalid digest"),
                    source: None,
                })?;
                (digest, Some(entry.media_type.clone()))
            }
            OwnedRef::Digest(d) => (d.clone(), None),
        };
        let Some(bytes) = self.read_blob(&digest, max_len)? else {
            return Ok(None);
        };
        let media_type = match entry_media_type {
            Some(mt) => mt,
            None => manifest_media_type(&digest, &bytes)?,
        };
        Ok(Some(Manifest {
            media_type,
            bytes,
            digest,
        }))
    }

    /// Validate a manifest to store and build its `index.json` entry: a tag, and for a
    /// referrer the descriptor the referrers API would show.
    fn manifest_entry(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<(Digest, RawDescriptor, Option<Digest>), Error> {
        if bytes.len() as u64 > MAX_MANIFEST_LEN {
            return Err(Error::TooLarge {
                what: "manifest".to_owned(),
                max_len: MAX_MANIFEST_LEN,
            });
        }
        let digest = Digest::of(bytes);
        let what = || digest.to_string();
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|e| Error::MalformedManifest {
                what: what(),
                reason: format!("not an OCI manifest: {e}"),
            })?;
        if raw.schema_version != 2 {
            return Err(Error::MalformedManifest {
                what: what(),
                reason: format!("schemaVersion is {}, expected 2", raw.schema_version),
            });
        }
        if let Some(mt) = &raw.media_type {
            if mt != media_type {
                return Err(Error::MalformedManifest {
                    what: what(),
                    reason: format!("mediaType field is {mt:?} but it is stored as {media_type:?}"),
                });
            }
        }
        let subject = match &raw.subject {
            Some(s) => Some(
                Digest::parse(&s.digest).map_err(|_| Error::MalformedManifest {
                    what: what(),
                    reason: "subject digest is not sha256".to_owned(),
                })?,
            ),
            None => None,
        };
        let mut annotations = BTreeMap::new();
        let mut artifact_type = None;
        if let Some(subject) = &subject {
            // A manifest's own annotations never name a tag or fake the bookkeeping.
            for (k, v) in raw.annotations.unwrap_or_default() {
                if ![
                    REF_NAME_ANNOTATION,
                    SUBJECT_ANNOTATION,
                    REPOSITORY_ANNOTATION,
                ]
                .contains(&k.as_str())
                {
                    annotations.insert(k, v);
                }
            }
            annotations.insert(SUBJECT_ANNOTATION.to_owned(), subject.to_string());
            annotations.insert(REPOSITORY_ANNOTATION.to_owned(), self.repository.clone());
            // OCI distribution spec: artifactType, else the config media type.
            artifact_type = raw
                .artifact_type
                .clone()
                .or_else(|| raw.config.as_ref().map(|c| c.media_type.clone()));
        }
        let ref_name = tag.map(|t| self.ref_name(t));
        if let Some(r) = &ref_name {
            annotations.insert(REF_NAME_ANNOTATION.to_owned(), r.clone());
        }
        let entry = RawDescriptor {
            media_type: media_type.to_owned(),
            digest: digest.to_string(),
            size: bytes.len() as u64,
            artifact_type,
            annotations: Some(annotations),
            other: BTreeMap::new(),
        };
        Ok((digest, entry, subject))
    }

    fn put_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Digest, Error> {
        let (digest, entry, subject) = self.manifest_entry(media_type, bytes, tag)?;
        self.write_blob(bytes)?;
        let ref_name = tag.map(|t| self.ref_name(t));
        let needs_entry = ref_name.is_some() || subject.is_some();
        if !needs_entry {
            // An untagged manifest without subject is reachable by digest only (like a
            // platform manifest of an index); no entry.
            return Ok(digest);
        }
        let repository = self.repository.clone();
        self.modify_index(|index| {
            let same_digest_untagged = |e: &RawDescriptor| {
                e.digest == entry.digest
                    && e.annotations.as_ref().is_some_and(|a| {
                        !a.contains_key(REF_NAME_ANNOTATION)
                            && a.get(REPOSITORY_ANNOTATION) == Some(&repository)
                    })
            };
            if let Some(r) = &ref_name {
                if index.manifests.contains(&entry) {
                    return Ok((false, ()));
                }
                // One entry per ref name: a tag moves.
                index.manifests.retain(|e| {
                    e.annotations
                        .as_ref()
                        .and_then(|a| a.get(REF_NAME_ANNOTATION))
                        != Some(r)
                });
                if subject.is_some() {
                    index.manifests.retain(|e| !same_digest_untagged(e));
                }
            } else if index.manifests.iter().any(|e| {
                e.digest == entry.digest
                    && e.annotations
                        .as_ref()
                        .is_some_and(|a| a.contains_key(SUBJECT_ANNOTATION))
                    && self.owns(e)
            }) {
                // Already discoverable as a referrer.
                return Ok((false, ()));
            }
            index.manifests.push(entry.clone());
            Ok((true, ()))
        })?;
        Ok(digest)
    }

    fn delete_manifest(&self, digest: &Digest) -> Result<(), Error> {
        let digest = digest.to_string();
        self.modify_index(|index| {
            let before = index.manifests.len();
            index
                .manifests
                .retain(|e| !(e.digest == digest && self.owns(e)));
            Ok((index.manifests.len() != before, ()))
        })
    }

    fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, Error> {
        let index = self.read_index()?;
        let subject = subject.to_string();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for entry in &index.manifests {
            let Some(ann) = &entry.annotations else {
                continue;
            };
            if ann.get(SUBJECT_ANNOTATION) != Some(&subject) || !self.owns(entry) {
                continue;
            }
            let Some(mut d) = entry.to_descriptor() else {
                continue; // not a sha256 digest: not ours, skip
            };
            if !seen.insert(d.digest.clone()) {
                continue;
            }
            for key in [
                REF_NAME_ANNOTATION,
                SUBJECT_ANNOTATION,
                REPOSITORY_ANNOTATION,
            ] {
                d.annotations.remove(key);
            }
            if d.artifact_type.is_none() {
                // Another tool rewrote index.json without artifactType: read it back.
                d.artifact_type = self
                    .read_blob(&d.digest, MAX_MANIFEST_LEN)?
                    .and_then(|b| serde_json::from_slice::<RawManifest>(&b).ok())
                    .and_then(|m| m.artifact_type.or(m.config.map(|c| c.media_type)));
            }
            if artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)) {
                out.push(d);
            }
        }
        Ok(out)
    }

    fn collect_garbage(&self) -> Result<usize, Error> {
        self.modify_index(|index| {
            let mut reachable = BTreeSet::new();
            let mut queue: Vec<Digest> = index
                .manifests
                .iter()
                .filter_map(|e| Digest::parse(&e.digest).ok())
                .collect();
            while let Some(d) = queue.pop() {
                if !reachable.insert(d.clone()) {
                    continue;
                }
                // Children of manifests and indexes; anything unreadable has none.
                let Ok(Some(bytes)) = self.read_blob(&d, MAX_MANIFEST_LEN) else {
                    continue;
                };
                let Ok(m) = serde_json::from_slice::<RawManifest>(&bytes) else {
                    continue;
                };
                let children = m
                    .config
                    .into_iter()
                    .chain(m.layers.unwrap_or_default())
                    .chain(m.manifests.unwrap_or_default());
                queue.extend(children.filter_map(|c| Digest::parse(&c.digest).ok()));
            }
            let dir = self.blob_dir();
            let mut deleted = 0;
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok((false, 0)),
                Err(e) => return Err(io_err("list", &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err("list", &dir))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let Ok(d) = Digest::parse(&format!("sha256:{name}")) else {
                    continue; // temp files and strangers are left alone
                };
                if !reachable.contains(&d) {
                    let path = entry.path();
                    fs::remove_file(&path).map_err(io_err("remove", &path))?;
                    deleted += 1;
                }
            }
            Ok((false, deleted))
        })
    }
}

/// The media type of a manifest read by digest: its `mediaType` field, else inferred.
fn manifest_media_type(digest: &Digest, bytes: &[u8]) -> Result<String, Error> {
    let raw: RawManifest = serde_json::from_slice(bytes).map_err(|e| Error::MalformedManifest {
        what: digest.to_string(),
        reason: format!("not an OCI manifest: {e}"),
    })?;
    Ok(raw.media_type.unwrap_or_else(|| {
        if raw.manifests.is_some() {
            INDEX_MEDIA_TYPE.to_owned()
        } else {
            MANIFEST_MEDIA_TYPE.to_owned()
        }
    }))
}

/// Read at most `max_len` bytes of a file ([`fsio::read_bounded`]); longer is `TooLarge`,
/// absent is `Ok(None)`.
fn read_bounded(
    path: &Path,
    max_len: u64,
    what: impl FnOnce() -> String,
) -> Result<Option<Vec<u8>>, Error> {
    fsio::read_bounded(path, max_len).map_err(|e| file_error(path, what, e))
}

/// Write `bytes` to `path` atomically ([`fsio::write_atomic`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    fsio::write_atomic(path, bytes).map_err(|e| file_error(path, || path.display().to_string(), e))
}

fn file_error(path: &Path, what: impl FnOnce() -> String, e: FileError) -> Error {
    match e {
        FileError::TooLarge { max_len } => Error::TooLarge {
            what: what(),
            max_len,
        },
        FileError::Io { op, source } => io_err(op, path)(source),
        other => io_err("use", path)(std::io::Error::other(other)),
    }
}

/// The distribution spec's repository name grammar ([`crate::names`]).
fn check_repository(name: &str) -> Result<(), Error> {
    if crate::names::valid_repository_name(name) {
        Ok(())
    } else {
        Err(Error::InvalidRepository(name.to_owned()))
    }
}

/// The distribution spec's tag grammar ([`crate::names`]).
pub(crate) fn check_tag(tag: &str) -> Result<(), Error> {
    if crate::names::valid_tag(tag) {
        Ok(())
    } else {
        Err(Error::InvalidTag(tag.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{Anchor, RootOfTrustName, EMPTY_BLOB};

    #[test]
    fn names_outside_the_grammar_are_typed_errors() {
        assert!(
            matches!(check_repository("a._b"), Err(Error::InvalidRepository(n)) if n == "a._b")
        );
        assert!(matches!(check_tag(".x"), Err(Error::InvalidTag(t)) if t == ".x"));
        check_repository("acme/tuf").unwrap();
        check_tag("1.4").unwrap();
    }

    #[test]
    fn locations() {
        let s = LayoutStore::parse_location("oci:/tmp/x").unwrap();
        assert_eq!(s.repository(), DEFAULT_REPOSITORY);
        let s = LayoutStore::parse_location("oci:./d:acme/tuf").unwrap();
        assert_eq!((s.dir(), s.repository()), (Path::new("./d"), "acme/tuf"));
        assert!(LayoutStore::parse_location("/tmp/x").is_err());
        assert!(LayoutStore::parse_location("oci::acme").is_err());
        assert!(LayoutStore::parse_location("oci:/d:Bad").is_err());
    }

    #[tokio::test]
    async fn anchor_round_trip_with_tag_and_referrer_bookkeeping() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::new(dir.path(), "acme/tuf").unwrap();
        store.put_blob(EMPTY_BLOB).await.unwrap();
        let anchor = Anchor::top(&RootOfTrustName::parse("acme").unwrap());
        let d = store
            .put_manifest(MANIFEST_MEDIA_TYPE, anchor.bytes(), Some(&anchor.tag()))
            .await
            .unwrap();
        assert_eq!(&d, anchor.digest());
        let m = store
            .get_manifest(ManifestRef::Tag(&anchor.tag()), MAX_MANIFEST_LEN)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.bytes, anchor.bytes());
        assert!(dir.path().join("oci-layout").is_file());
        // Another repository of the same layout does not see the tag.
        let other = LayoutStore::new(dir.path(), "globex/tuf").unwrap();
        assert!(other
            .get_manifest(ManifestRef::Tag(&anchor.tag()), MAX_MANIFEST_LEN)
            .await
            .unwrap()
            .is_none());
    }

    fn referrer(anchor: &Anchor, n: u32) -> Vec<u8> {
        crate::ocijson::jcs(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": "application/vnd.example+json",
            "config": {"mediaType": crate::mapping::EMPTY_MEDIA_TYPE,
                       "digest": crate::mapping::EMPTY_DIGEST, "size": 2},
            "layers": [{"mediaType": crate::mapping::EMPTY_MEDIA_TYPE,
                        "digest": crate::mapping::EMPTY_DIGEST, "size": 2}],
            "subject": {"mediaType": MANIFEST_MEDIA_TYPE,
                        "digest": anchor.digest().as_str(), "size": anchor.bytes().len()},
            "annotations": {"n": n.to_string()},
        }))
    }

    fn acme_top() -> Anchor {
        Anchor::top(&RootOfTrustName::parse("acme").unwrap())
    }

    #[test]
    fn concurrent_writers_in_threads_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let anchor = acme_top();
        let threads: Vec<_> = (0..8u32)
            .map(|t| {
                let path = dir.path().to_owned();
                let anchor = anchor.clone();
                std::thread::spawn(move || {
                    // Each writer has its own store (own lock file handle) and runtime.
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    let store = LayoutStore::new(path, "acme/tuf").unwrap();
                    rt.block_on(async {
                        for i in 0..10 {
                            let m = referrer(&anchor, t * 100 + i);
                            let tag = (i % 2 == 0).then(|| format!("t{t}-{i}"));
                            store
                                .put_manifest(MANIFEST_MEDIA_TYPE, &m, tag.as_deref())
                                .await
                                .unwrap();
                        }
                    });
                })
            })
            .collect();
        // Meanwhile a reader never sees a partial index.json (atomic rename).
        let reader_store = LayoutStore::new(dir.path(), "acme/tuf").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        while !threads.iter().all(std::thread::JoinHandle::is_finished) {
            rt.block_on(reader_store.referrers(anchor.digest(), None))
                .unwrap();
        }
        for t in threads {
            t.join().unwrap();
        }
        let (list, source) = rt
            .block_on(reader_store.referrers(anchor.digest(), None))
            .unwrap();
        assert_eq!(source, ReferrersSource::Layout);
        assert_eq!(list.len(), 80);
        let ns: BTreeSet<String> = list.iter().map(|d| d.annotations["n"].clone()).collect();
        assert_eq!(ns.len(), 80);
        assert!(
            list.iter().all(|d| d.annotations.len() == 1),
            "bookkeeping leaked"
        );
        // No temp file is left behind.
        for sub in [dir.path().to_owned(), dir.path().join("blobs/sha256")] {
            for e in fs::read_dir(sub).unwrap() {
                let name = e.unwrap().file_name().into_string().unwrap();
                assert!(!(name.starts_with('.') && name.contains(".tmp")), "{name}");
            }
        }
    }

    #[tokio::test]
    async fn corrupt_blob_is_detected_and_replaced_on_put() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::new(dir.path(), "acme/tuf").unwrap();
        let d = store.put_blob(b"hello").await.unwrap();
        fs::write(dir.path().join("blobs/sha256").join(d.hex()), b"jello").unwrap();
        let err = store.get_blob(&d, 100).await.unwrap_err();
        assert!(
            matches!(&err, Error::DigestMismatch { expected, .. } if *expected == d),
            "{err}"
        );
        store.put_blob(b"hello").await.unwrap();
        assert_eq!(store.get_blob(&d, 100).await.unwrap().unwrap(), b"hello");
        // endless_data: a blob longer than the limit is refused, not truncated.
        assert!(matches!(
            store.get_blob(&d, 4).await,
            Err(Error::TooLarge { max_len: 4, .. })
        ));
        assert!(store
            .get_blob(&Digest::of(b"absent"), 100)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn hostile_index_json_is_a_clear_error_or_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::new(dir.path(), "acme/tuf").unwrap();
        let anchor = acme_top();
        fs::write(dir.path().join("index.json"), b"{not json").unwrap();
        let err = store.referrers(anchor.digest(), None).await.unwrap_err();
        assert!(matches!(err, Error::LayoutIndex { .. }), "{err}");
        assert!(err.to_string().contains("index.json"), "{err}");
        fs::write(
            dir.path().join("index.json"),
            br#"{"schemaVersion":1,"manifests":[]}"#,
        )
        .unwrap();
        assert!(matches!(
            store.referrers(anchor.digest(), None).await,
            Err(Error::LayoutIndex { .. })
        ));
        // Path traversal in a digest and a junk referrer entry: ignored or refused.
        let hostile = serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": MANIFEST_MEDIA_TYPE, "digest": "sha256:../../../etc/passwd", "size": 1,
             "annotations": {SUBJECT_ANNOTATION: anchor.digest().as_str(),
                             REPOSITORY_ANNOTATION: "acme/tuf",
                             REF_NAME_ANNOTATION: "acme/tuf:x"}}]});
        fs::write(dir.path().join("index.json"), hostile.to_string()).unwrap();
        assert!(store
            .referrers(anchor.digest(), None)
            .await
            .unwrap()
            .0
            .is_empty());
        assert!(matches!(
            store.get_manifest(ManifestRef::Tag("x"), 100).await,
            Err(Error::LayoutIndex { .. })
        ));
        // endless_data: an index.json over the limit is refused.
        let f = fs::File::create(dir.path().join("index.json")).unwrap();
        f.set_len(MAX_INDEX_LEN + 1).unwrap();
        assert!(matches!(
            store.referrers(anchor.digest(), None).await,
            Err(Error::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn manifest_annotations_cannot_create_tags() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::new(dir.path(), "acme/tuf").unwrap();
        let anchor = acme_top();
        let mut m: serde_json::Value = serde_json::from_slice(&referrer(&anchor, 1)).unwrap();
        m["annotations"][REF_NAME_ANNOTATION] = "acme/tuf:latest".into();
        m["annotations"][REPOSITORY_ANNOTATION] = "globex/tuf".into();
        store
            .put_manifest(MANIFEST_MEDIA_TYPE, m.to_string().as_bytes(), None)
            .await
            .unwrap();
        assert!(store
            .get_manifest(ManifestRef::Tag("latest"), MAX_MANIFEST_LEN)
            .await
            .unwrap()
            .is_none());
        let (list, _) = store.referrers(anchor.digest(), None).await.unwrap();
        assert_eq!(list.len(), 1);
        let globex = LayoutStore::new(dir.path(), "globex/tuf").unwrap();
        assert!(globex
            .referrers(anchor.digest(), None)
            .await
            .unwrap()
            .0
            .is_empty());
    }

    #[tokio::test]
    async fn tags_move_deletes_unlist_and_garbage_is_collected() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::new(dir.path(), "acme/tuf").unwrap();
        let anchor = acme_top();
        store.put_blob(EMPTY_BLOB).await.unwrap();
        store
            .put_manifest(MANIFEST_MEDIA_TYPE, anchor.bytes(), Some("a"))
            .await
            .unwrap();
        let r1 = store
            .put_manifest(MANIFEST_MEDIA_TYPE, &referrer(&anchor, 1), None)
            .await
            .unwrap();
        let r2 = store
            .put_manifest(MANIFEST_MEDIA_TYPE, &referrer(&anchor, 2), Some("r2"))
            .await
            .unwrap();
        // Idempotent: the same put twice leaves one entry.
        store
            .put_manifest(MANIFEST_MEDIA_TYPE, &referrer(&anchor, 2), Some("r2"))
            .await
            .unwrap();
        let filtered = store
            .referrers(anchor.digest(), Some("application/vnd.example+json"))
            .await
            .unwrap()
            .0;
        assert_eq!(filtered.len(), 2);
        assert!(store
            .referrers(anchor.digest(), Some("application/other"))
            .await
            .unwrap()
            .0
            .is_empty());
        // The tag moves from the anchor to r1.
        store
            .put_manifest(MANIFEST_MEDIA_TYPE, &referrer(&anchor, 1), Some("a"))
            .await
            .unwrap();
        let head = store
            .head_manifest(ManifestRef::Tag("a"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(head.digest, r1);
        store.delete_manifest(&r2).await.unwrap();
        let left = store.referrers(anchor.digest(), None).await.unwrap().0;
        assert_eq!(left.iter().map(|d| &d.digest).collect::<Vec<_>>(), [&r1]);
        // r2 and the anchor (no longer tagged) are garbage; r1 and the empty blob are not.
        assert_eq!(store.collect_garbage().await.unwrap(), 2);
        assert!(store
            .get_blob(&r2, MAX_MANIFEST_LEN)
            .await
            .unwrap()
            .is_none());
        assert!(store
            .get_blob(&r1, MAX_MANIFEST_LEN)
            .await
            .unwrap()
            .is_some());
        assert!(store
            .get_blob(&Digest::of(EMPTY_BLOB), 2)
            .await
            .unwrap()
            .is_some());
    }
}
