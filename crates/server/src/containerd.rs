//! The containerd 2 image-verifier protocol ("bindir" plugin), the second layer on nodes
//! that run containerd 2: containerd calls every executable in `bin_dir` after it resolved
//! an image and before it fetches anything,
//!
//! ```text
//! VERIFIER -name registry.example.com/acme/app:1.4 -digest sha256:… \
//!     -stdin-media-type application/vnd.oci.descriptor.v1+json   < descriptor JSON
//! ```
//!
//! and pulls only when all exit 0; what they print on stdout is the reason it shows.
//! [`judge`] decides: the digest containerd resolved for the name must be the one the root
//! of trust signed for it (and the descriptor's size the signed length). containerd then
//! fetches by that digest and checks the bytes itself, so nothing is fetched here but TUF
//! metadata.
//!
//! The persistent cache is two things: the verified-metadata cache of the resolver (checked
//! again from the pinned root on every call; warm and unchanged, one registry request), and
//! [`DecisionCache`], a file of recent allow decisions that saves even that request for a
//! short time (never past the earliest expiry of the metadata they came from). Refusals are
//! never cached.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ocituf_oci::Digest;
use ocituf_resolver::{Error, ErrorKind, ImageReference, Resolver};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The stdin media type this verifier understands (containerd's default).
pub const DESCRIPTOR_MEDIA_TYPE: &str = "application/vnd.oci.descriptor.v1+json";

/// Largest stdin read.
const MAX_STDIN: usize = 1024 * 1024;

/// The arguments containerd passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierCall {
    pub name: String,
    pub digest: String,
    pub stdin_media_type: String,
}

/// Parse `-name N -digest D -stdin-media-type M` (also `--name`, `-name=N`); unknown
/// flags with a value (`-operation pull`) are accepted and ignored.
///
/// # Errors
/// A message naming the missing or malformed argument.
pub fn parse_args(args: &[String]) -> Result<VerifierCall, String> {
    let mut name = None;
    let mut digest = None;
    let mut media = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let flag = arg.trim_start_matches('-');
        if flag.len() == arg.len() {
            return Err(format!("unexpected argument {arg:?}"));
        }
        let (key, value) = match flag.split_once('=') {
            Some((k, v)) => (k, v.to_owned()),
            None => (
                flag,
                it.next()
                    .ok_or_else(|| format!("{arg} needs a value"))?
                    .clone(),
            ),
        };
        match key {
            "name" => name = Some(value),
            "digest" => digest = Some(value),
            "stdin-media-type" => media = Some(value),
            _ => {}
        }
    }
    Ok(VerifierCall {
        name: name.ok_or("-name is missing")?,
        digest: digest.ok_or("-digest is missing")?,
        stdin_media_type: media.unwrap_or_else(|| DESCRIPTOR_MEDIA_TYPE.to_owned()),
    })
}

/// The fields of the OCI descriptor on stdin that are checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescriptorIn {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// What to answer containerd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub allow: bool,
    /// The reason, for stdout.
    pub reason: String,
    /// For a refusal: whether verification refused (`Refused`), or could not be done.
    pub kind: ErrorKind,
}

impl Judgement {
    fn deny(kind: ErrorKind, reason: impl std::fmt::Display) -> Self {
        Judgement {
            allow: false,
            reason: format!("ocituf: {reason}"),
            kind,
        }
    }
}

/// Read the descriptor from stdin bytes (bounded by the caller).
fn descriptor(call: &VerifierCall, stdin: &[u8]) -> Result<DescriptorIn, String> {
    if call.stdin_media_type != DESCRIPTOR_MEDIA_TYPE {
        return Err(format!(
            "stdin media type {:?} is not supported (only {DESCRIPTOR_MEDIA_TYPE}; \
             leave containerd's verify_on_run off)",
            call.stdin_media_type
        ));
    }
    if stdin.len() > MAX_STDIN {
        return Err(format!("the descriptor on stdin is over {MAX_STDIN} bytes"));
    }
    serde_json::from_slice(stdin).map_err(|e| format!("the descriptor on stdin is not valid: {e}"))
}

/// Decide whether containerd may pull `call.name` at `call.digest`.
///
/// # Security
/// Allowed only when the root of trust that covers the name signed exactly this digest
/// (and size) for it: the tag's target for `name:tag`, the digest's target for a name by
/// digest. A name no root of trust covers is refused. Failures to verify refuse too (fail
/// closed).
pub async fn judge(
    resolver: &Resolver,
    call: &VerifierCall,
    stdin: &[u8],
    cache: Option<&DecisionCache>,
    now: OffsetDateTime,
) -> Judgement {
    let desc = match descriptor(call, stdin) {
        Ok(d) => d,
        Err(e) => return Judgement::deny(ErrorKind::Config, e),
    };
    if desc.digest != call.digest {
        return Judgement::deny(
            ErrorKind::Refused,
            format!(
                "the descriptor on stdin names {} but -digest is {}",
                desc.digest, call.digest
            ),
        );
    }
    let Ok(digest) = Digest::parse(&call.digest) else {
        return Judgement::deny(
            ErrorKind::Refused,
            format!("{} is not a sha256 digest", call.digest),
        );
    };
    let image = match ImageReference::parse(&call.name) {
        Ok(i) => i,
        Err(e) => return Judgement::deny(ErrorKind::Config, crate::decide::chain(&e)),
    };
    if let Some(c) = cache {
        if c.allows(&call.name, &digest, desc.size, now) {
            return Judgement {
                allow: true,
                reason: format!(
                    "ocituf: {} is {digest}, allowed by a decision cached until the metadata's expiry or TTL",
                    call.name
                ),
                kind: ErrorKind::Refused,
            };
        }
    }
    let deny = |e: &Error| Judgement::deny(e.kind(), crate::decide::chain(e));
    let entry = match resolver.policy().lookup(&image) {
        Ok(e) => e,
        Err(e) => return deny(&e),
    };
    let mut root = match resolver.open_root(entry).await {
        Ok(r) => r,
        Err(e) => return deny(&e),
    };
    let signed = match root.signed(&image).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return deny(&Error::NotSigned {
                image: image.to_string(),
                target: image
                    .target_name()
                    .unwrap_or_else(|| format!("{}@{digest}", image.repo.repository)),
                root_of_trust: entry.root_of_trust.clone(),
            })
        }
        Err(e) => return deny(&e),
    };
    if signed.digest != digest {
        return deny(&Error::DigestMismatch {
            image: image.to_string(),
            target: signed.target,
            role: signed.role,
            role_version: signed.role_version,
            served: digest,
            signed: signed.digest,
        });
    }
    if signed.length != desc.size {
        return Judgement::deny(
            ErrorKind::Refused,
            format!(
                "{image} is {digest}, but its descriptor says {} bytes and targets role {:?} \
                 v{} signed {}",
                desc.size, signed.role, signed.role_version, signed.length
            ),
        );
    }
    if let (Some(c), Some(until)) = (cache, root.valid_until()) {
        c.remember(&call.name, &digest, desc.size, now, until);
    }
    Judgement {
        allow: true,
        reason: format!(
            "ocituf: {image} is {digest}, signed by targets role {:?} v{} of root of trust {:?}",
            signed.role, signed.role_version, entry.root_of_trust
        ),
        kind: ErrorKind::Refused,
    }
}

/// Most decisions kept.
const MAX_DECISIONS: usize = 1000;
/// Largest decision file read.
const MAX_DECISION_FILE: u64 = 1024 * 1024;

/// Recent allow decisions in a file, each valid until the earlier of `ttl` after it was made
/// and the earliest expiry of the metadata that made it.
///
/// # Security
/// The file is trusted as much as its directory (keep it root's, like the verifier's cache):
/// whoever can write it can allow an image for at most its entries' lifetimes, which are
/// capped at `ttl` from now when read. A TTL of zero turns it off.
#[derive(Debug, Clone)]
pub struct DecisionCache {
    path: PathBuf,
    ttl: Duration,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Decisions {
    entries: Vec<Decision>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Decision {
    name: String,
    digest: String,
    size: u64,
    made: i64,
    until: i64,
}

impl DecisionCache {
    pub fn new(path: impl Into<PathBuf>, ttl: Duration) -> Self {
        DecisionCache {
            path: path.into(),
            ttl,
        }
    }

    fn ttl_secs(&self) -> i64 {
        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)
    }

    fn load(&self) -> Decisions {
        match ocituf_tuf::fsio::read_bounded(&self.path, MAX_DECISION_FILE) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => Decisions::default(),
        }
    }

    /// Whether a live decision allows `name` at `digest` with `size`.
    pub fn allows(&self, name: &str, digest: &Digest, size: u64, now: OffsetDateTime) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let now = now.unix_timestamp();
        self.load().entries.iter().any(|d| {
            d.name == name
                && d.digest == digest.as_str()
                && d.size == size
                && d.made <= now
                && now < d.until
                && now < d.made.saturating_add(self.ttl_secs())
        })
    }

    /// Record an allow decision (best effort: a cache that cannot be written costs requests).
    pub fn remember(
        &self,
        name: &str,
        digest: &Digest,
        size: u64,
        now: OffsetDateTime,
        valid_until: OffsetDateTime,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        let now_s = now.unix_timestamp();
        let mut all = self.load();
        all.entries.retain(|d| d.until > now_s && d.name != name);
        all.entries.push(Decision {
            name: name.to_owned(),
            digest: digest.as_str().to_owned(),
            size,
            made: now_s,
            until: valid_until
                .unix_timestamp()
                .min(now_s.saturating_add(self.ttl_secs())),
        });
        if all.entries.len() > MAX_DECISIONS {
            let drop = all.entries.len() - MAX_DECISIONS;
            all.entries.drain(..drop);
        }
        if let Ok(bytes) = serde_json::to_vec(&all) {
            if let Err(e) = write_private(&self.path, &bytes) {
                tracing::debug!(path = %self.path.display(), error = %e, "decision cache not written");
            }
        }
    }
}

/// Write `bytes` to `path` atomically (temporary file, rename), mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".decisions.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn arguments_as_containerd_passes_them() {
        let c = parse_args(&args(
            "-name r.example/acme/app:1 -digest sha256:ab -stdin-media-type application/vnd.oci.descriptor.v1+json",
        ))
        .unwrap();
        assert_eq!(c.name, "r.example/acme/app:1");
        assert_eq!(c.digest, "sha256:ab");
        let c = parse_args(&args("--name=x -digest y -operation pull")).unwrap();
        assert_eq!((c.name.as_str(), c.digest.as_str()), ("x", "y"));
        assert_eq!(c.stdin_media_type, DESCRIPTOR_MEDIA_TYPE);
        assert!(parse_args(&args("-name x"))
            .unwrap_err()
            .contains("-digest"));
        assert!(parse_args(&args("-name"))
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse_args(&args("stray")).is_err());
    }

    #[test]
    fn decisions_expire_at_the_earlier_of_ttl_and_metadata_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let c = DecisionCache::new(dir.path().join("d.json"), Duration::from_secs(60));
        let d = Digest::of(b"x");
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let s = time::Duration::seconds;
        c.remember("r/a:1", &d, 5, t0, t0 + s(30));
        assert!(c.allows("r/a:1", &d, 5, t0 + s(29)));
        assert!(
            !c.allows("r/a:1", &d, 5, t0 + s(30)),
            "past the metadata expiry"
        );
        assert!(!c.allows("r/a:1", &d, 6, t0), "another size");
        assert!(!c.allows("r/a:2", &d, 5, t0), "another name");
        c.remember("r/a:1", &d, 5, t0, t0 + s(3600));
        assert!(c.allows("r/a:1", &d, 5, t0 + s(59)));
        assert!(!c.allows("r/a:1", &d, 5, t0 + s(60)), "past the TTL");
        // A tampered file cannot stretch a decision past the TTL from when it was made.
        std::fs::write(
            dir.path().join("d.json"),
            format!(r#"{{"entries":[{{"name":"r/a:1","digest":"{d}","size":5,"made":1800000000,"until":9999999999}}]}}"#),
        )
        .unwrap();
        assert!(!c.allows("r/a:1", &d, 5, t0 + s(61)));
        let off = DecisionCache::new(dir.path().join("e.json"), Duration::ZERO);
        off.remember("r/a:1", &d, 5, t0, t0 + s(30));
        assert!(!off.allows("r/a:1", &d, 5, t0));
    }
}
