//! Waiting until clients can see a signed image (`ocituf sign --wait`): the image is
//! resolved again and again exactly as `ocituf verify` would (the resolver, the pinned root,
//! the newest timestamp, snapshot and delegations from the registry) until it verifies to
//! the signed digest. Whoever publishes (the online signer, or a person running `ocituf
//! publish`) is not asked: only what a client sees counts.

use std::path::Path;
use std::time::{Duration, Instant};

use ocituf_oci::Digest;
use ocituf_resolver::policy::{RootPin, Scope, TrustEntry};
use ocituf_resolver::{ImageReference, RepositoryReference, Resolver, TrustPolicy, VerifiedDigest};

use crate::error::{fail, Result};
use crate::pin::Pin;
use crate::ErrorKind;

/// First pause between two looks; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(250);
/// Longest pause between two looks.
pub const MAX_POLL: Duration = Duration::from_secs(5);

/// Where and how to look.
pub struct Watch<'a> {
    /// The metadata repository and root-of-trust name the image is signed in.
    pub repository: &'a RepositoryReference,
    pub name: &'a str,
    /// The pinned root: a client's trust starts there.
    pub pin: &'a Pin,
    pub registry: ocituf_oci::RegistryOptions,
    /// The client cache to use (verified metadata only, as `ocituf verify` keeps it).
    pub cache_dir: &'a Path,
}

/// What to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// The image verifies to this digest (after `sign`).
    Signed(Digest),
    /// Clients refuse the image: it is no longer signed (after `yank`).
    Refused,
}

/// What clients saw when the wait ended.
#[derive(Debug)]
pub enum Seen {
    Signed(Box<VerifiedDigest>),
    Refused(String),
}

/// Resolve `image` (a tag) until clients see what `want` says, at most `timeout`.
///
/// # Errors
/// [`ErrorKind::Timeout`] when they do not in time, with what clients saw last; a
/// configuration error when the image or repository cannot be named in a trust policy.
pub async fn until(
    w: &Watch<'_>,
    image: &ImageReference,
    want: &Want,
    timeout: Duration,
) -> Result<Seen> {
    let scope = Scope::parse(&image.repo.to_string()).map_err(|e| {
        crate::Error::wrap(
            ErrorKind::Config,
            format!("cannot watch {image} as a client would"),
            e,
        )
    })?;
    let mut policy = TrustPolicy::default();
    policy
        .add(TrustEntry {
            scope,
            repository: w.repository.clone(),
            root_of_trust: w.name.to_owned(),
            root: RootPin {
                file: None,
                sha256: Some(w.pin.sha256()),
            },
        })
        .map_err(|e| crate::Error::wrap(ErrorKind::Config, "cannot watch the image", e))?;
    let resolver = Resolver::new(policy, w.cache_dir).with_registry_options(w.registry.clone());
    let started = Instant::now();
    let mut pause = FIRST_POLL;
    loop {
        let last = match (resolver.resolve(image).await, want) {
            (Ok(v), Want::Signed(d)) if v.digest == *d => return Ok(Seen::Signed(Box::new(v))),
            (Err(e), Want::Refused) if e.kind() == ErrorKind::Refused => {
                return Ok(Seen::Refused(e.to_string()))
            }
            (Ok(v), _) => format!("clients get {} for it", v.digest),
            (Err(e), _) => e.to_string(),
        };
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(fail(
                ErrorKind::Timeout,
                format!(
                    "{image} was {}, but no timestamp that clients can see shows it within \
                     {timeout:.0?} (last look: {last}); is `ocituf serve` running for {:?}? \
                     Or run `ocituf publish`",
                    if matches!(want, Want::Signed(_)) {
                        "signed"
                    } else {
                        "yanked"
                    },
                    w.name
                ),
            ));
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}
