//! Fetching one metadata file from a source that may hold several candidates for it.

use std::collections::BTreeMap;

use crate::cjson;
use crate::error::Error;
use crate::source::{MetadataRequest, RepoSource};
use crate::trusted::TrustedSet;

/// What to fetch.
pub(super) struct Wanted<'a> {
    pub role: &'a str,
    pub version: Option<u64>,
    pub hashes: Option<&'a BTreeMap<String, String>>,
    pub max_len: u64,
}

/// Ask for candidates 0, 1, ... and return the first that `accept` takes into the trusted
/// set, with what `accept` returned. `Ok(None)` when the source has no candidate at all;
/// the error of the first candidate when none verifies.
pub(super) async fn fetch_verified<S, R, F>(
    source: &S,
    trusted: &mut TrustedSet,
    max_candidates: u32,
    wanted: &Wanted<'_>,
    mut accept: F,
) -> Result<Option<(Vec<u8>, R)>, Error>
where
    S: RepoSource,
    F: FnMut(&mut TrustedSet, &[u8]) -> Result<R, Error>,
{
    let mut first_error = None;
    for attempt in 0..max_candidates.max(1) {
        let req = MetadataRequest {
            role: wanted.role,
            version: wanted.version,
            hashes: wanted.hashes,
            max_len: wanted.max_len,
            attempt,
        };
        let Some(fetched) = source.fetch_metadata(&req).await? else {
            break;
        };
        let result = check_length(wanted, &fetched.bytes)
            .and_then(|()| check_claim(wanted.role, fetched.claimed_version, &fetched.bytes))
            .and_then(|()| accept(trusted, &fetched.bytes));
        match result {
            Ok(r) => return Ok(Some((fetched.bytes, r))),
            Err(e) => {
                tracing::debug!(role = wanted.role, attempt, error = %e, "candidate refused");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// A source must not return more than it was allowed to; check anyway (endless data).
fn check_length(wanted: &Wanted<'_>, bytes: &[u8]) -> Result<(), Error> {
    if bytes.len() as u64 > wanted.max_len {
        return Err(Error::TooLarge {
            what: format!("{} metadata", wanted.role),
            max_len: wanted.max_len,
        });
    }
    Ok(())
}

/// A candidate whose claimed version (an annotation, a hint) is not its signed version is
/// junk: refuse it before it can touch the trusted set.
fn check_claim(role: &str, claimed: Option<u64>, bytes: &[u8]) -> Result<(), Error> {
    let Some(claimed) = claimed else {
        return Ok(());
    };
    let value = cjson::parse(bytes).map_err(|source| Error::Json {
        what: format!("{role} metadata"),
        source,
    })?;
    let signed_version = value
        .get("signed")
        .and_then(|s| s.get("version"))
        .and_then(serde_json::Value::as_u64);
    match signed_version {
        Some(v) if v == claimed => Ok(()),
        got => Err(Error::VersionMismatch {
            role: role.to_owned(),
            expected: claimed,
            got: got.unwrap_or(0),
        }),
    }
}
