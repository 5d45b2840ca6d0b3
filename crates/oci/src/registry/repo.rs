//! [`RegistryRepo`]: one repository of a registry, as an [`ArtifactStore`].

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};

use super::client::Req;
use super::error::RegistryError;
use super::http::{random_duration, read_body, strip_query};
use super::manifest::ManifestFacts;
use super::referrers::Mode;
use super::{RegistryClient, RegistryOptions, MANIFEST_ACCEPT};
use crate::store::{ArtifactStore, Descriptor, Digest, Manifest, ManifestRef, ReferrersSource};

/// Tries of one manifest PUT by tag that distribution refuses with DIGEST_INVALID under
/// concurrent writes ([`RegistryRepo::push_manifest`]).
const MAX_TAG_PUT_ATTEMPTS: u32 = 4;

/// How `referrers()` reads the tag-schema fallback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FallbackReads {
    /// Only the `sha256-<hex>` index: one request.
    #[default]
    IndexOnly,
    /// The index merged with the unique referrer tags (`sha256-<subject>.<referrer>`), which
    /// finds referrers an unlucky concurrent writer (ORAS, or a crashed ocituf) left out of
    /// the index. Costs a tags listing and one GET per referrer missing from the index. Does
    /// not write; [`RegistryRepo::reconcile_referrers`] writes the repaired index.
    MergeUniqueTags,
}

/// One repository (`acme/tuf`) of a registry.
#[derive(Clone, Debug)]
pub struct RegistryRepo {
    pub(crate) client: RegistryClient,
    pub(crate) name: String,
    pub(crate) pull_scope: String,
    pub(crate) push_scope: String,
    pub(crate) fallback_reads: FallbackReads,
}

pub(crate) fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name)?.to_str().ok()
}

fn content_type(resp: &reqwest::Response) -> Option<String> {
    header(resp, "content-type").map(|c| c.split(';').next().unwrap_or(c).trim().to_owned())
}

impl RegistryRepo {
    /// A store for `registry.example.com/acme/tuf` with a new client. To share one client
    /// (connections, tokens, request count) between repositories of a host, use
    /// [`RegistryClient::repo`].
    ///
    /// # Errors
    /// An invalid reference, or a client that cannot be built (CA file, TLS).
    pub fn open(reference: &str, opts: RegistryOptions) -> Result<Self, RegistryError> {
        let (host, name) = super::parse_repository(reference)?;
        RegistryClient::new(&host, opts)?.repo(&name)
    }

    pub(crate) fn new(client: RegistryClient, name: &str) -> Result<Self, RegistryError> {
        if !super::valid_repository_name(name) {
            return Err(RegistryError::InvalidReference {
                reference: name.to_owned(),
                reason: "invalid repository name",
            });
        }
        Ok(Self {
            pull_scope: format!("repository:{name}:pull"),
            push_scope: format!("repository:{name}:pull,push"),
            client,
            name: name.to_owned(),
            fallback_reads: FallbackReads::IndexOnly,
        })
    }

    #[must_use]
    pub fn with_fallback_reads(mut self, reads: FallbackReads) -> Self {
        self.fallback_reads = reads;
        self
    }

    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// The repository name (`acme/tuf`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn url(&self, tail: &str) -> Url {
        self.client.url(&format!("/v2/{}/{tail}", self.name))
    }

    pub(crate) fn manifest_url(&self, reference: &ManifestRef<'_>) -> Result<Url, RegistryError> {
        match reference {
            ManifestRef::Tag(t) => {
                if !super::valid_tag(t) {
                    return Err(RegistryError::InvalidTag((*t).to_owned()));
                }
                Ok(self.url(&format!("manifests/{t}")))
            }
            ManifestRef::Digest(d) => Ok(self.url(&format!("manifests/{d}"))),
        }
    }

    pub(crate) async fn get(
        &self,
        url: Url,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, RegistryError> {
        self.client
            .send(&Req {
                method: Method::GET,
                url,
                accept,
                content_type: None,
                body: None,
                scope: &self.pull_scope,
                range: None,
            })
            .await
    }

    /// GET a manifest, bounded by `max_len`, checked against the requested digest or, for a
    /// tag, against the registry's `Docker-Content-Digest`.
    pub(crate) async fn fetch_manifest(
        &self,
        reference: &ManifestRef<'_>,
        max_len: u64,
    ) -> Result<Option<Manifest>, RegistryError> {
        let url = self.manifest_url(reference)?;
        let mut resp = self.get(url.clone(), Some(MANIFEST_ACCEPT)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.client.status_error(&Method::GET, &url, resp).await);
        }
        let shown = strip_query(&url);
        let header_digest = header(&resp, "docker-content-digest").map(str::to_owned);
        let ct = content_type(&resp);
        let bytes = read_body(&mut resp, max_len, &shown).await?;
        let actual = Digest::of(&bytes);
        let expected = match reference {
            ManifestRef::Digest(d) => Some((*d).clone()),
            // Only a sha256 header can be checked; others are ignored, the digest we return
            // is always the one we computed.
            ManifestRef::Tag(_) => header_digest.and_then(|h| Digest::parse(&h).ok()),
        };
        if let Some(expected) = expected {
            if expected != actual {
                return Err(RegistryError::DigestMismatch {
                    url: shown,
                    expected,
                    actual,
                });
            }
        }
        let media_type = match ct {
            Some(ct) if !ct.is_empty() && ct != "application/json" => ct,
            _ => ManifestFacts::parse(&bytes)
                .ok()
                .and_then(|f| f.media_type)
                .unwrap_or_default(),
        };
        Ok(Some(Manifest {
            media_type,
            bytes,
            digest: actual,
        }))
    }

    /// PUT a manifest under `reference`; returns the answer for header inspection.
    pub(crate) async fn push_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        digest: &Digest,
        reference: &ManifestRef<'_>,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = self.manifest_url(reference)?;
        let mut attempt = 0;
        let resp = loop {
            let resp = self
                .client
                .send(&Req {
                    method: Method::PUT,
                    url: url.clone(),
                    accept: None,
                    content_type: Some(media_type),
                    body: Some(bytes),
                    scope: &self.push_scope,
                    range: None,
                })
                .await?;
            if resp.status().is_success() {
                break resp;
            }
            let err = self.client.status_error(&Method::PUT, &url, resp).await;
            // Distribution 2.8 answers 400 DIGEST_INVALID to a tag PUT that races other
            // writes to the repository (seen about once in three loaded runs of eight
            // concurrent signers), although the bytes are the ones whose digest we computed.
            // The PUT is idempotent: go again, a bounded number of times.
            let racing = matches!(
                (&err, reference),
                (
                    RegistryError::Status { status: 400, code: Some(code), .. },
                    ManifestRef::Tag(_),
                ) if code == "DIGEST_INVALID"
            );
            attempt += 1;
            if !racing || attempt >= MAX_TAG_PUT_ATTEMPTS {
                return Err(err);
            }
            tracing::debug!(%url, attempt, error = %err, "manifest tag PUT refused, retrying");
            let pause = Duration::from_millis(50) + random_duration(Duration::from_millis(250));
            tokio::time::sleep(pause).await;
        };
        if let Some(h) = header(&resp, "docker-content-digest") {
            if let Ok(got) = Digest::parse(h) {
                if &got != digest {
                    return Err(RegistryError::DigestMismatch {
                        url: strip_query(&url),
                        expected: digest.clone(),
                        actual: got,
                    });
                }
            }
        }
        Ok(resp)
    }

    async fn blob_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self
            .client
            .send(&Req {
                method: Method::HEAD,
                url: url.clone(),
                accept: None,
                content_type: None,
                body: None,
                scope: &self.push_scope,
                range: None,
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.client.status_error(&Method::HEAD, &url, resp).await),
        }
    }

    pub(crate) fn mode(&self) -> super::referrers::Capability {
        self.client
            .inner
            .capabilities
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&self.name)
            .copied()
            .unwrap_or_default()
    }

    pub(crate) fn learn(&self, f: impl FnOnce(&mut super::referrers::Capability)) {
        let mut caps = self
            .client
            .inner
            .capabilities
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(caps.entry(self.name.clone()).or_default());
    }

    async fn put_manifest_inner(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Digest, RegistryError> {
        let digest = Digest::of(bytes);
        let facts = ManifestFacts::parse(bytes).map_err(RegistryError::InvalidManifest)?;
        if let Some(t) = tag {
            if !super::valid_tag(t) {
                return Err(RegistryError::InvalidTag(t.to_owned()));
            }
        }
        let Some(subject) = facts.subject.clone() else {
            let r = tag.map_or(ManifestRef::Digest(&digest), ManifestRef::Tag);
            self.push_manifest(media_type, bytes, &digest, &r).await?;
            return Ok(digest);
        };
        let unique = super::fallback::referrer_tag(&subject, &digest);
        let first = match (self.mode().write, tag) {
            // Known fallback registry: the unique tag keeps the referrer safe from
            // `garbage-collect --delete-untagged` from its first byte on.
            (Mode::Fallback, _) => ManifestRef::Tag(&unique),
            (_, Some(t)) => ManifestRef::Tag(t),
            (_, None) => ManifestRef::Digest(&digest),
        };
        let resp = self
            .push_manifest(media_type, bytes, &digest, &first)
            .await?;
        // Distribution spec: a registry with the referrers API MUST answer a manifest with a
        // subject with the `OCI-Subject` header; without it, clients use the tag schema.
        let native = header(&resp, "oci-subject").is_some();
        drop(resp);
        self.learn(|c| {
            if native {
                // The registry has the API: read it too.
                *c = super::referrers::Capability {
                    read: Mode::Native,
                    write: Mode::Native,
                };
            } else {
                c.write = Mode::Fallback;
            }
        });
        if native {
            return Ok(digest);
        }
        if first != ManifestRef::Tag(&unique) {
            self.push_manifest(media_type, bytes, &digest, &ManifestRef::Tag(&unique))
                .await?;
        }
        if let Some(t) = tag {
            if first != ManifestRef::Tag(t) {
                self.push_manifest(media_type, bytes, &digest, &ManifestRef::Tag(t))
                    .await?;
            }
        }
        let desc = facts.descriptor(media_type, digest.clone(), bytes.len() as u64);
        super::fallback::update(self, &subject, Some(desc), None).await?;
        Ok(digest)
    }

    async fn delete_manifest_inner(&self, digest: &Digest) -> Result<(), RegistryError> {
        let limit = self.client.inner.opts.index_max_len;
        // The subject names the fallback index to fix; a native registry needs no fixing.
        let subject = if self.mode().write == Mode::Native {
            None
        } else {
            match self
                .fetch_manifest(&ManifestRef::Digest(digest), limit)
                .await
            {
                Ok(Some(m)) => ManifestFacts::parse(&m.bytes).ok().and_then(|f| f.subject),
                // Gone already, or too large to be a referrer of ours: delete it all the same.
                Ok(None) | Err(RegistryError::BodyTooLarge { .. }) => None,
                Err(e) => return Err(e),
            }
        };
        let url = self.url(&format!("manifests/{digest}"));
        let resp = self
            .client
            .send(&Req {
                method: Method::DELETE,
                url: url.clone(),
                accept: None,
                content_type: None,
                body: None,
                scope: &self.push_scope,
                range: None,
            })
            .await?;
        // Distribution deletes the manifest and every tag pointing at it (the unique referrer
        // tag too), so a fallback writer cannot resurrect it from the tags list.
        if !resp.status().is_success() && resp.status() != StatusCode::NOT_FOUND {
            return Err(self.client.status_error(&Method::DELETE, &url, resp).await);
        }
        if let Some(subject) = subject {
            super::fallback::update(self, &subject, None, Some(digest)).await?;
        }
        Ok(())
    }

    /// Rewrite the fallback index of `subject` so that it lists every referrer found through
    /// the unique referrer tags as well as those already listed, and return the result. Use
    /// after a crash or when ORAS (which writes no unique tags) raced an ocituf writer.
    ///
    /// # Errors
    /// Registry failures, or no convergence within `fallback_max_rounds`.
    pub async fn reconcile_referrers(
        &self,
        subject: &Digest,
    ) -> Result<Vec<Descriptor>, crate::Error> {
        super::fallback::update(self, subject, None, None).await?;
        Ok(super::fallback::list(self, subject, None, FallbackReads::IndexOnly).await?)
    }

    /// What this client has learnt about the repository's referrers support (from a PUT's
    /// `OCI-Subject` and a referrers GET).
    pub fn referrers_capability(&self) -> super::ReferrersCapability {
        self.mode().public()
    }

    /// Tell the client what the repository supports, e.g. from a cache of an earlier run,
    /// so that the first `referrers()` skips detection (saving the probe request on a
    /// fallback registry). A wrong "native" corrects itself on the registry's 404; a wrong
    /// fallback corrects itself on the next `OCI-Subject` seen. `Unknown` forgets.
    pub fn set_referrers_capability(&self, capability: super::ReferrersCapability) {
        let mode = match capability {
            super::ReferrersCapability::Native => Mode::Native,
            super::ReferrersCapability::TagSchemaFallback => Mode::Fallback,
            super::ReferrersCapability::Unknown => Mode::Unknown,
        };
        self.learn(|c| {
            c.read = mode;
            c.write = mode;
        });
    }
}

impl ArtifactStore for RegistryRepo {
    fn location(&self) -> String {
        format!("{}/{}", self.client.host(), self.name)
    }

    async fn get_blob(
        &self,
        digest: &Digest,
        max_len: u64,
    ) -> Result<Option<Vec<u8>>, crate::Error> {
        let url = self.url(&format!("blobs/{digest}"));
        let mut resp = self.get(url.clone(), None).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self
                .client
                .status_error(&Method::GET, &url, resp)
                .await
                .into());
        }
        let shown = strip_query(&url);
        let bytes = read_body(&mut resp, max_len, &shown).await?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(RegistryError::DigestMismatch {
                url: shown,
                expected: digest.clone(),
                actual,
            }
            .into());
        }
        Ok(Some(bytes))
    }

    async fn put_blob(&self, bytes: &[u8]) -> Result<Digest, crate::Error> {
        let digest = Digest::of(bytes);
        if self.blob_exists(&digest).await? {
            return Ok(digest);
        }
        // Distribution spec "POST then PUT" monolithic upload.
        let url = self.url("blobs/uploads/");
        let resp = self
            .client
            .send(&Req {
                method: Method::POST,
                url: url.clone(),
                accept: None,
                content_type: None,
                body: None,
                scope: &self.push_scope,
                range: None,
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self
                .client
                .status_error(&Method::POST, &url, resp)
                .await
                .into());
        }
        let location = header(&resp, "location").ok_or_else(|| RegistryError::InvalidResponse {
            url: strip_query(&url),
            reason: "upload answer without Location".into(),
        })?;
        let mut put = url
            .join(location)
            .map_err(|_| RegistryError::InvalidResponse {
                url: strip_query(&url),
                reason: "upload Location is not a URL".into(),
            })?;
        drop(resp);
        put.query_pairs_mut().append_pair("digest", digest.as_str());
        let resp = self
            .client
            .send(&Req {
                method: Method::PUT,
                url: put.clone(),
                accept: None,
                content_type: Some("application/octet-stream"),
                body: Some(bytes),
                scope: &self.push_scope,
                range: None,
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .client
                .status_error(&Method::PUT, &put, resp)
                .await
                .into());
        }
        Ok(digest)
    }

    async fn get_manifest(
        &self,
        reference: ManifestRef<'_>,
        max_len: u64,
    ) -> Result<Option<Manifest>, crate::Error> {
        Ok(self.fetch_manifest(&reference, max_len).await?)
    }

    async fn head_manifest(
        &self,
        reference: ManifestRef<'_>,
    ) -> Result<Option<Descriptor>, crate::Error> {
        let url = self.manifest_url(&reference)?;
        let resp = self
            .client
            .send(&Req {
                method: Method::HEAD,
                url: url.clone(),
                accept: Some(MANIFEST_ACCEPT),
                content_type: None,
                body: None,
                scope: &self.pull_scope,
                range: None,
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self
                .client
                .status_error(&Method::HEAD, &url, resp)
                .await
                .into());
        }
        let header_digest =
            header(&resp, "docker-content-digest").and_then(|h| Digest::parse(h).ok());
        let size = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let media_type = content_type(&resp);
        drop(resp);
        let digest = match (&reference, header_digest) {
            (ManifestRef::Digest(d), Some(h)) if h != **d => {
                return Err(RegistryError::DigestMismatch {
                    url: strip_query(&url),
                    expected: (*d).clone(),
                    actual: h,
                }
                .into())
            }
            (_, Some(h)) => Some(h),
            (ManifestRef::Digest(d), None) => Some((*d).clone()),
            (ManifestRef::Tag(_), None) => None,
        };
        if let (Some(digest), Some(size), Some(media_type)) = (digest, size, media_type) {
            return Ok(Some(Descriptor {
                media_type,
                digest,
                size,
                artifact_type: None,
                annotations: BTreeMap::new(),
            }));
        }
        // A HEAD answer that lacks the digest (by tag), the size or the media type: the
        // bytes tell (one GET, bounded, digest-checked).
        let limit = self.client.inner.opts.index_max_len;
        Ok(self
            .fetch_manifest(&reference, limit)
            .await?
            .map(|m| Descriptor {
                media_type: m.media_type,
                digest: m.digest,
                size: m.bytes.len() as u64,
                artifact_type: None,
                annotations: BTreeMap::new(),
            }))
    }

    async fn put_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Digest, crate::Error> {
        Ok(self.put_manifest_inner(media_type, bytes, tag).await?)
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<(), crate::Error> {
        Ok(self.delete_manifest_inner(digest).await?)
    }

    async fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<(Vec<Descriptor>, ReferrersSource), crate::Error> {
        Ok(super::referrers::referrers(self, subject, artifact_type).await?)
    }
}
