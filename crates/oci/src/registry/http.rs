//! HTTP helpers of the registry client: bounded body reads, `Retry-After`, jitter, and URLs
//! fit for messages.

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

use reqwest::Url;

use super::error::RegistryError;

/// A URL for messages: without query (upload state, tokens' service/scope) or userinfo.
pub(crate) fn strip_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// `Retry-After`: delta-seconds or an HTTP date (RFC 9110 10.2.3).
pub(crate) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    parse_retry_after(v, time::OffsetDateTime::now_utc())
}

fn parse_retry_after(v: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    // A date in the past means now.
    Some(Duration::try_from(when - now).unwrap_or(Duration::ZERO))
}

/// A uniformly random duration in `[0, max]`; randomness from std's per-process random hash
/// keys (jitter needs no cryptographic quality).
pub(crate) fn random_duration(max: Duration) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(h.finish() % (nanos + 1))
}

/// Read a body, stopping as soon as it exceeds `limit` (Content-Length is only a hint).
pub(crate) async fn read_body(
    resp: &mut reqwest::Response,
    limit: u64,
    url: &str,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::BodyTooLarge {
        url: url.to_owned(),
        limit,
    };
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|source| RegistryError::Transport {
            method: "GET".into(),
            url: url.to_owned(),
            source,
        })?
    {
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_http_dates() {
        let now = time::macros::datetime!(1994-11-06 08:49:00 UTC);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(37))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:48:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn messages_carry_no_query_or_userinfo() {
        let u = Url::parse("https://user:pw@r.example/v2/a/blobs/uploads/x?_state=secret").unwrap();
        assert_eq!(strip_query(&u), "https://r.example/v2/a/blobs/uploads/x");
    }

    #[test]
    fn random_durations_stay_in_range() {
        for _ in 0..100 {
            assert!(random_duration(Duration::from_millis(5)) <= Duration::from_millis(5));
        }
        assert_eq!(random_duration(Duration::ZERO), Duration::ZERO);
    }
}
