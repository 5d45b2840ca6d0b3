//! The referrers API (distribution spec 1.1 "Listing Referrers") with capability detection.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode, Url};

use super::error::RegistryError;
use super::http::{read_body, strip_query};
use super::repo::{header, RegistryRepo};
use super::INDEX_MEDIA_TYPE;
use crate::store::{Descriptor, Digest, ReferrersSource};

/// What is known of one side of a repository's referrers support.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Mode {
    #[default]
    Unknown,
    Native,
    Fallback,
}

/// Learnt per repository (in the [`super::RegistryClient`], so every `RegistryRepo` of that
/// client shares it): `read` from the answer to a referrers GET (200 with an index: native;
/// 404: fallback), `write` from a manifest PUT (`OCI-Subject` header: native).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Capability {
    pub(crate) read: Mode,
    pub(crate) write: Mode,
}

/// What a client has learnt about a repository's referrers support.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferrersCapability {
    /// Nothing asked yet.
    Unknown,
    /// The referrers API answered (GET 200) and/or a PUT returned `OCI-Subject`.
    Native,
    /// The registry has no referrers API: the tag schema is used.
    TagSchemaFallback,
}

impl Capability {
    pub(crate) fn public(self) -> ReferrersCapability {
        match (self.read, self.write) {
            (Mode::Fallback, _) | (Mode::Unknown, Mode::Fallback) => {
                ReferrersCapability::TagSchemaFallback
            }
            (Mode::Native, _) | (Mode::Unknown, Mode::Native) => ReferrersCapability::Native,
            (Mode::Unknown, Mode::Unknown) => ReferrersCapability::Unknown,
        }
    }
}

/// Referrers of `subject`: the native API when the registry has it, else the fallback index.
pub(crate) async fn referrers(
    repo: &RegistryRepo,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<(Vec<Descriptor>, ReferrersSource), RegistryError> {
    let mode = repo.mode();
    // Distribution spec: no `OCI-Subject` on a PUT with a subject means no referrers API,
    // so what this client wrote is in the fallback index: read it there, without a probe.
    let fallback =
        mode.read == Mode::Fallback || (mode.read == Mode::Unknown && mode.write == Mode::Fallback);
    if !fallback {
        if let Some(found) = native(repo, subject, artifact_type).await? {
            repo.learn(|c| c.read = Mode::Native);
            return Ok((found, ReferrersSource::Native));
        }
        repo.learn(|c| c.read = Mode::Fallback);
    }
    let found = super::fallback::list(repo, subject, artifact_type, repo.fallback_reads).await?;
    Ok((found, ReferrersSource::TagSchemaFallback))
}

/// GET /v2/<name>/referrers/<digest>[?artifactType=..], following `Link: <..>; rel="next"`
/// up to the page and entry caps. `None` when the registry has no referrers API (404).
async fn native(
    repo: &RegistryRepo,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<Option<Vec<Descriptor>>, RegistryError> {
    let opts = &repo.client.inner.opts;
    let mut url = repo.url(&format!("referrers/{subject}"));
    if let Some(t) = artifact_type {
        url.query_pairs_mut().append_pair("artifactType", t);
    }
    let mut out = Vec::new();
    let mut pages = 0u32;
    loop {
        pages += 1;
        let mut resp = repo.get(url.clone(), Some(INDEX_MEDIA_TYPE)).await?;
        if resp.status() == StatusCode::NOT_FOUND && pages == 1 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(repo.client.status_error(&Method::GET, &url, resp).await);
        }
        // Distribution spec: `OCI-Filters-Applied: artifactType` when the registry filtered;
        // otherwise the client filters.
        let filtered = header(&resp, "oci-filters-applied").is_some_and(|v| {
            v.split(',')
                .any(|f| f.trim().eq_ignore_ascii_case("artifactType"))
        });
        let next = next_link(&resp, &url)?;
        let shown = strip_query(&url);
        let body = read_body(&mut resp, opts.index_max_len, &shown).await?;
        let entries = parse_index(&body, &shown)?;
        for e in entries.iter().filter_map(descriptor_from_json) {
            if let (Some(want), false) = (artifact_type, filtered) {
                if e.artifact_type.as_deref() != Some(want) {
                    continue;
                }
            }
            out.push(e);
            if out.len() as u64 > opts.referrers_max_entries {
                return Err(RegistryError::ReferrersLimit {
                    subject: subject.clone(),
                    what: "entries",
                    max: opts.referrers_max_entries,
                });
            }
        }
        match next {
            None => return Ok(Some(out)),
            Some(_) if pages >= opts.referrers_max_pages => {
                return Err(RegistryError::ReferrersLimit {
                    subject: subject.clone(),
                    what: "pages",
                    max: u64::from(opts.referrers_max_pages),
                })
            }
            Some(n) => url = n,
        }
    }
}

/// The `rel="next"` target of a `Link` header (RFC 8288), resolved against the request URL
/// and refused unless it stays on the same origin (a registry must not send our token
/// elsewhere).
pub(crate) fn next_link(
    resp: &reqwest::Response,
    current: &Url,
) -> Result<Option<Url>, RegistryError> {
    for value in resp.headers().get_all("link") {
        let Ok(value) = value.to_str() else { continue };
        for link in value.split(',') {
            let Some((target, params)) = link.trim().split_once('>') else {
                continue;
            };
            let Some(target) = target.trim().strip_prefix('<') else {
                continue;
            };
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            if !is_next {
                continue;
            }
            let next = current
                .join(target)
                .map_err(|_| RegistryError::InvalidResponse {
                    url: strip_query(current),
                    reason: "Link target is not a URL".into(),
                })?;
            if next.origin() != current.origin() {
                return Err(RegistryError::InvalidResponse {
                    url: strip_query(current),
                    reason: format!("Link points to another origin: {}", strip_query(&next)),
                });
            }
            return Ok(Some(next));
        }
    }
    Ok(None)
}

/// The `manifests` array of an image index.
pub(crate) fn parse_index(body: &[u8], url: &str) -> Result<Vec<serde_json::Value>, RegistryError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|source| RegistryError::InvalidJson {
            url: url.to_owned(),
            source,
        })?;
    match v.get("manifests") {
        Some(serde_json::Value::Array(a)) => Ok(a.clone()),
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(_) => Err(RegistryError::InvalidResponse {
            url: url.to_owned(),
            reason: "index `manifests` is not an array".into(),
        }),
    }
}

/// A descriptor from JSON; `None` for entries ocituf cannot use (non-sha256 digests, missing
/// fields), which are skipped, not fatal: the list is a hint.
pub(crate) fn descriptor_from_json(v: &serde_json::Value) -> Option<Descriptor> {
    let media_type = v.get("mediaType")?.as_str()?.to_owned();
    let digest = Digest::parse(v.get("digest")?.as_str()?).ok()?;
    let size = v.get("size")?.as_u64()?;
    let artifact_type = v
        .get("artifactType")
        .and_then(|a| a.as_str())
        .map(str::to_owned);
    let annotations = match v.get("annotations") {
        None | Some(serde_json::Value::Null) => BTreeMap::new(),
        Some(a) => a
            .as_object()?
            .iter()
            .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect::<Option<_>>()?,
    };
    Some(Descriptor {
        media_type,
        digest,
        size,
        artifact_type,
        annotations,
    })
}

pub(crate) fn descriptor_to_json(d: &Descriptor) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("mediaType".into(), d.media_type.clone().into());
    m.insert("digest".into(), d.digest.as_str().into());
    m.insert("size".into(), d.size.into());
    if let Some(a) = &d.artifact_type {
        m.insert("artifactType".into(), a.clone().into());
    }
    if !d.annotations.is_empty() {
        let a: serde_json::Map<_, _> = d
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
            .collect();
        m.insert("annotations".into(), a.into());
    }
    m.into()
}
