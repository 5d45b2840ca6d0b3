//! Durations as users write them (`90d`, `12h`, `30m`, `45s`, `2w`): the CLI's expiry flags
//! and the online signer's configuration share this one parser.

use time::Duration;

/// Parse a duration such as `90d`; `None` when it is not one.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let unit_at = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(unit_at);
    let n: i64 = n.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(secs).map(Duration::seconds)
}
