//! Expiry arguments: a duration from now (`90d`, `12h`, `30m`, `45s`, `2w`) or an RFC 3339
//! time (`2027-01-01T00:00:00Z`).

use ocituf_resolver::ErrorKind;
use time::OffsetDateTime;

use crate::failure::fail;

pub use ocituf_writer::when::parse_duration;

/// The expiry time that `flag = value` asks for, from `now`; whole seconds (TUF writes
/// `expires` without fractions).
pub fn expiry(flag: &str, value: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    let at = if let Some(d) = parse_duration(value) {
        now.checked_add(d)
    } else {
        OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).ok()
    };
    let at = at.ok_or_else(|| {
        fail(
            ErrorKind::Config,
            format!(
                "--{flag} {value:?} is neither a duration (90d, 12h, 30m, 45s, 2w) nor an RFC 3339 time (2027-01-01T00:00:00Z)"
            ),
        )
    })?;
    Ok(at.replace_nanosecond(0).unwrap_or(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        let now = time::macros::datetime!(2026-01-01 00:00:00.5 UTC);
        assert_eq!(
            expiry("x", "90d", now).unwrap(),
            time::macros::datetime!(2026-04-01 00:00:00 UTC)
        );
        assert_eq!(
            expiry("x", "2027-01-01T00:00:00Z", now).unwrap(),
            time::macros::datetime!(2027-01-01 00:00:00 UTC)
        );
        assert_eq!(parse_duration("12h"), Some(time::Duration::hours(12)));
        for bad in ["", "d", "12", "1y", "-1d", "99999999999999999999d"] {
            assert!(expiry("root-expires", bad, now).is_err(), "{bad}");
        }
        let msg = expiry("root-expires", "1y", now).unwrap_err().to_string();
        assert!(msg.contains("--root-expires"), "{msg}");
    }
}
