//! `signer.toml`: which roots of trust the signer serves, with which online keys, and how
//! long what it signs lives.
//!
//! ```toml
//! lock-file = "/var/lib/ocituf/signer.lock"   # default: ocituf-signer.lock here
//! poll-interval = "2s"                         # how often new role versions are looked for
//! listen = "127.0.0.1:8780"   # optional: /healthz, /readyz, /metrics, status, live site pages
//! site-refresh = "30s"        # how long a rendered site page is served before it is rebuilt
//!
//! # Several replicas (docs/signer.md): leases in PostgreSQL instead of the lock file.
//! database-url-env = "OCITUF_DATABASE_URL"  # or database-url = "postgres://…" (no secret here)
//! lease-seconds = 15          # how long a leader holds a root of trust without renewing
//! replica-id = "signer-0"     # default: HOSTNAME-PID
//!
//! [[root-of-trust]]
//! name = "acme"
//! repository = "registry.example.com/acme/tuf"
//! root = "acme-root.json"            # the pinned root version 1 (its exact bytes)
//! snapshot-key = "env:SNAPSHOT_KEY"  # a PEM file, env:VAR with the PEM or its base64, or pkcs11:…
//! timestamp-key = "/keys/timestamp.pem"
//! snapshot-expires = "7d"
//! timestamp-expires = "1d"
//! resign-every = "6h"                # re-sign this long after the last publish
//! submit-token-sha256 = ["9f86…"]    # sha256 of each bearer token that may POST submissions
//! keep-timestamps = 4                # retention after each publish (docs/oci-mapping.md §8):
//! keep-snapshots = 4                 #   the newest K versions kept, K from 2 to 1000
//! ```

use std::path::{Path, PathBuf};

use ocituf_oci::Retention;
use ocituf_resolver::ErrorKind;
use ocituf_writer::when::parse_duration;
use ocituf_writer::{Error, Result};
use serde::Deserialize;
use time::Duration;

/// The whole configuration file, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub lock_file: PathBuf,
    pub poll_interval: Duration,
    /// Where the HTTP endpoints listen (none without it).
    pub listen: Option<std::net::SocketAddr>,
    /// How long a rendered site page is served before it is built again.
    pub site_refresh: Duration,
    pub roots: Vec<RootConfig>,
    /// Leases in PostgreSQL for several replicas; `None`: one instance, the lock file.
    pub database: Option<DatabaseConfig>,
}

/// Where the leases live and how long one lasts.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `postgres://…` (it may hold a password: never printed).
    pub url: String,
    pub lease: std::time::Duration,
    /// This replica's name in the lease table.
    pub replica_id: String,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &"<redacted>")
            .field("lease", &self.lease)
            .field("replica_id", &self.replica_id)
            .finish()
    }
}

/// Shortest and longest `lease-seconds`.
const LEASE_SECONDS: std::ops::RangeInclusive<u64> = 1..=3600;

/// One root of trust the signer serves.
#[derive(Debug, Clone)]
pub struct RootConfig {
    pub name: String,
    pub repository: String,
    /// The pinned root version 1 (exact bytes).
    pub root: Vec<u8>,
    /// Key specs (`PATH` or `env:VAR`), read when the signer starts.
    pub snapshot_key: String,
    pub timestamp_key: String,
    pub snapshot_expires: Duration,
    pub timestamp_expires: Duration,
    pub resign_every: Duration,
    /// The sha256 (lowercase hex) of each bearer token that may submit role versions of
    /// this root of trust over HTTP; none: submissions are refused.
    pub submit_token_sha256: Vec<String>,
    /// What is pruned after each publish (docs/oci-mapping.md §8).
    pub retention: Retention,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawConfig {
    lock_file: Option<PathBuf>,
    poll_interval: Option<String>,
    listen: Option<String>,
    site_refresh: Option<String>,
    database_url: Option<String>,
    database_url_env: Option<String>,
    lease_seconds: Option<u64>,
    replica_id: Option<String>,
    #[serde(default)]
    root_of_trust: Vec<RawRoot>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawRoot {
    name: String,
    repository: String,
    root: PathBuf,
    snapshot_key: String,
    timestamp_key: String,
    snapshot_expires: Option<String>,
    timestamp_expires: Option<String>,
    resign_every: Option<String>,
    #[serde(default)]
    submit_token_sha256: Vec<String>,
    // Signed, so that a negative value gets our message naming the key, not serde's.
    keep_timestamps: Option<i64>,
    keep_snapshots: Option<i64>,
}

fn config_error(file: &Path, message: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Config, format!("{}: {message}", file.display()))
}

fn duration(file: &Path, key: &str, value: Option<&str>, default: &str) -> Result<Duration> {
    let text = value.unwrap_or(default);
    match parse_duration(text) {
        Some(d) if d.is_positive() => Ok(d),
        _ => Err(config_error(
            file,
            format!("{key} = {text:?} is not a duration (90d, 12h, 30m, 45s, 2w)"),
        )),
    }
}

/// The `submit-token-sha256` list of root of trust `name`, checked and lowercased.
fn token_hashes(file: &Path, name: &str, hashes: Vec<String>) -> Result<Vec<String>> {
    hashes
        .into_iter()
        .map(|h| {
            let h = h.to_ascii_lowercase();
            if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(h)
            } else {
                Err(config_error(
                    file,
                    format!(
                        "root of trust {name:?}: submit-token-sha256 {h:?} is not a sha256 in hex (printf %s \"$TOKEN\" | sha256sum)"
                    ),
                ))
            }
        })
        .collect()
}

/// How many newest timestamp or snapshot versions retention may keep: at least 2 (the
/// rule of docs/oci-mapping.md §8, so a client that just read the previous timestamp still
/// finds what it names), at most what one referrers listing reads back comfortably.
const KEEP_VERSIONS: std::ops::RangeInclusive<i64> = 2..=1000;

/// The retention of root of trust `name`: `keep-timestamps` and `keep-snapshots`, checked;
/// unset keys take [`Retention::default`].
fn retention(
    file: &Path,
    name: &str,
    keep_timestamps: Option<i64>,
    keep_snapshots: Option<i64>,
) -> Result<Retention> {
    let default = Retention::default();
    let keep = |key: &str, value: Option<i64>, default: usize| match value {
        None => Ok(default),
        Some(v) if KEEP_VERSIONS.contains(&v) => {
            usize::try_from(v).map_err(|_| keep_out_of_range(file, name, key, v))
        }
        Some(v) => Err(keep_out_of_range(file, name, key, v)),
    };
    Ok(Retention {
        keep_timestamps: keep("keep-timestamps", keep_timestamps, default.keep_timestamps)?,
        keep_snapshots: keep("keep-snapshots", keep_snapshots, default.keep_snapshots)?,
    })
}

fn keep_out_of_range(file: &Path, name: &str, key: &str, value: i64) -> Error {
    config_error(
        file,
        format!(
            "root of trust {name:?}: {key} = {value} must be from {} to {} (the newest versions kept after each publish; a client that read the previous timestamp must still find it)",
            KEEP_VERSIONS.start(),
            KEEP_VERSIONS.end()
        ),
    )
}

/// `HOSTNAME-PID`: unique among running replicas, and new after a restart (a restarted
/// replica never mistakes its predecessor's lease for its own).
fn default_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "signer".to_owned());
    format!("{host}-{}", std::process::id())
}

/// The database settings: `database-url`, or the environment variable `database-url-env`
/// names; neither: `None` (the lock file).
fn database(
    file: &Path,
    url: Option<String>,
    url_env: Option<String>,
    lease_seconds: Option<u64>,
    replica_id: Option<String>,
) -> Result<Option<DatabaseConfig>> {
    let url = match (url, url_env) {
        (Some(_), Some(_)) => {
            return Err(config_error(
                file,
                "give database-url or database-url-env, not both",
            ))
        }
        (Some(u), None) => u,
        (None, Some(var)) => std::env::var(&var).map_err(|_| {
            config_error(
                file,
                format!("database-url-env = {var:?}, but that environment variable is not set (or not UTF-8)"),
            )
        })?,
        (None, None) => {
            if lease_seconds.is_some() || replica_id.is_some() {
                return Err(config_error(
                    file,
                    "lease-seconds and replica-id need database-url or database-url-env",
                ));
            }
            return Ok(None);
        }
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(config_error(
            file,
            "the database URL must start with postgres:// (postgres://USER@HOST:PORT/DB)",
        ));
    }
    let secs = lease_seconds.unwrap_or(15);
    if !LEASE_SECONDS.contains(&secs) {
        return Err(config_error(
            file,
            format!("lease-seconds = {secs} must be from 1 to 3600"),
        ));
    }
    let replica_id = replica_id.unwrap_or_else(default_replica_id);
    if replica_id.is_empty() || replica_id.len() > 200 || replica_id.chars().any(char::is_control) {
        return Err(config_error(
            file,
            "replica-id must be 1 to 200 printable characters",
        ));
    }
    Ok(Some(DatabaseConfig {
        url,
        lease: std::time::Duration::from_secs(secs),
        replica_id,
    }))
}

fn listen(file: &Path, l: &str) -> Result<std::net::SocketAddr> {
    l.parse().map_err(|_| {
        config_error(
            file,
            format!("listen = {l:?} is not an address and port (127.0.0.1:8780, [::1]:8780)"),
        )
    })
}

/// Largest configuration file read.
const MAX_CONFIG_LEN: u64 = 1024 * 1024;

impl Config {
    /// Read and check `file`; relative paths in it are relative to its directory.
    ///
    /// # Errors
    /// A configuration error naming the file and the key at fault.
    pub fn load(file: &Path) -> Result<Self> {
        let bytes = ocituf_tuf::fsio::read_bounded(file, MAX_CONFIG_LEN)
            .map_err(|e| config_error(file, format!("could not read it: {e}")))?
            .ok_or_else(|| config_error(file, "does not exist"))?;
        let text = String::from_utf8(bytes).map_err(|_| config_error(file, "is not UTF-8"))?;
        Self::parse(&text, file)
    }

    /// Parse the text of `file` (see the module documentation for the format).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| config_error(file, e))?;
        let dir = file.parent().unwrap_or(Path::new("."));
        if raw.root_of_trust.is_empty() {
            return Err(config_error(
                file,
                "serves no root of trust: add a [[root-of-trust]] table",
            ));
        }
        let mut roots = Vec::new();
        for r in raw.root_of_trust {
            if roots.iter().any(|c: &RootConfig| c.name == r.name) {
                return Err(config_error(
                    file,
                    format!("root of trust {:?} is listed twice", r.name),
                ));
            }
            let root_path = dir.join(&r.root);
            let root = ocituf_tuf::fsio::read_bounded(&root_path, ocituf_writer::MAX_METADATA_LEN)
                .map_err(|e| {
                    config_error(
                        file,
                        format!(
                            "could not read the pinned root {} of {:?}: {e}",
                            root_path.display(),
                            r.name
                        ),
                    )
                })?
                .ok_or_else(|| {
                    config_error(
                        file,
                        format!(
                            "the pinned root {} of {:?} does not exist",
                            root_path.display(),
                            r.name
                        ),
                    )
                })?;
            let key_path = |spec: String| {
                if spec.starts_with("env:") || spec.starts_with("pkcs11:") {
                    spec
                } else {
                    dir.join(spec).display().to_string()
                }
            };
            let timestamp_expires = duration(
                file,
                "timestamp-expires",
                r.timestamp_expires.as_deref(),
                "1d",
            )?;
            let snapshot_expires = duration(
                file,
                "snapshot-expires",
                r.snapshot_expires.as_deref(),
                "7d",
            )?;
            let resign_every = duration(file, "resign-every", r.resign_every.as_deref(), "6h")?;
            // Re-signing must happen well before expiry: at the latest halfway through the
            // shorter lifetime, so one failed attempt still leaves time for the next.
            if resign_every * 2 > timestamp_expires.min(snapshot_expires) {
                return Err(config_error(
                    file,
                    format!(
                        "root of trust {:?}: resign-every must be at most half of timestamp-expires and snapshot-expires",
                        r.name
                    ),
                ));
            }
            let submit_token_sha256 = token_hashes(file, &r.name, r.submit_token_sha256)?;
            let retention = retention(file, &r.name, r.keep_timestamps, r.keep_snapshots)?;
            roots.push(RootConfig {
                name: r.name,
                repository: r.repository,
                root,
                snapshot_key: key_path(r.snapshot_key),
                timestamp_key: key_path(r.timestamp_key),
                snapshot_expires,
                timestamp_expires,
                resign_every,
                submit_token_sha256,
                retention,
            });
        }
        Ok(Config {
            lock_file: raw
                .lock_file
                .map_or_else(|| PathBuf::from("ocituf-signer.lock"), |p| dir.join(p)),
            poll_interval: duration(file, "poll-interval", raw.poll_interval.as_deref(), "2s")?,
            listen: raw.listen.map(|l| listen(file, &l)).transpose()?,
            site_refresh: duration(file, "site-refresh", raw.site_refresh.as_deref(), "30s")?,
            roots,
            database: database(
                file,
                raw.database_url,
                raw.database_url_env,
                raw.lease_seconds,
                raw.replica_id,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(extra_top: &str, extra_root: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root.json"), b"{}").unwrap();
        let file = dir.path().join("signer.toml");
        let text = format!(
            "{extra_top}\n[[root-of-trust]]\nname = \"acme\"\nrepository = \"oci:reg:acme/tuf\"\nroot = \"root.json\"\nsnapshot-key = \"online.pem\"\ntimestamp-key = \"pkcs11:token=t;object=ts\"\n{extra_root}\n"
        );
        Config::parse(&text, &file)
    }

    #[test]
    fn a_submit_token_hash_that_is_not_a_sha256_is_refused() {
        let e = parse_with("", "submit-token-sha256 = [\"my-token\"]").unwrap_err();
        assert!(
            e.message
                .contains("submit-token-sha256 \"my-token\" is not a sha256 in hex"),
            "{e}"
        );
        let ok = parse_with(
            "",
            &format!("submit-token-sha256 = [\"{}\"]", "AB".repeat(32)),
        )
        .unwrap();
        assert_eq!(ok.roots[0].submit_token_sha256, vec!["ab".repeat(32)]);
    }

    #[test]
    fn a_listen_value_that_is_not_an_address_and_port_is_refused() {
        let e = parse_with("listen = \"localhost\"", "").unwrap_err();
        assert!(
            e.message
                .contains("listen = \"localhost\" is not an address and port"),
            "{e}"
        );
        let ok = parse_with("listen = \"127.0.0.1:0\"", "").unwrap();
        assert_eq!(ok.listen, Some("127.0.0.1:0".parse().unwrap()));
    }

    #[test]
    fn without_a_database_url_the_lock_file_serves_and_lease_settings_are_refused() {
        assert!(parse_with("", "").unwrap().database.is_none());
        let e = parse_with("lease-seconds = 3", "").unwrap_err();
        assert!(e.message.contains("need database-url"), "{e}");
    }

    #[test]
    fn a_database_url_is_read_from_the_environment_and_never_printed() {
        let e = parse_with("database-url-env = \"OCITUF_TEST_NO_SUCH_VAR\"", "").unwrap_err();
        assert!(e.message.contains("OCITUF_TEST_NO_SUCH_VAR"), "{e}");
        let c = parse_with(
            "database-url = \"postgres://u:secret@127.0.0.1/db\"\nlease-seconds = 3\nreplica-id = \"r1\"",
            "",
        )
        .unwrap();
        let db = c.database.unwrap();
        assert_eq!(db.lease, std::time::Duration::from_secs(3));
        assert_eq!(db.replica_id, "r1");
        assert!(!format!("{db:?}").contains("secret"));
        let e = parse_with("database-url = \"mysql://x\"", "").unwrap_err();
        assert!(e.message.contains("must start with postgres://"), "{e}");
        let e = parse_with("database-url = \"postgres://x\"\nlease-seconds = 0", "").unwrap_err();
        assert!(e.message.contains("lease-seconds = 0"), "{e}");
        let d = parse_with("database-url = \"postgres://x\"", "").unwrap();
        let db = d.database.unwrap();
        assert_eq!(db.lease, std::time::Duration::from_secs(15));
        assert!(db.replica_id.ends_with(&format!("-{}", std::process::id())));
    }

    #[test]
    fn retention_defaults_to_the_rule_of_the_mapping_and_takes_each_key() {
        assert_eq!(
            parse_with("", "").unwrap().roots[0].retention,
            Retention::default()
        );
        let c = parse_with("", "keep-timestamps = 2\nkeep-snapshots = 10").unwrap();
        assert_eq!(
            c.roots[0].retention,
            Retention {
                keep_timestamps: 2,
                keep_snapshots: 10
            }
        );
    }

    #[test]
    fn a_retention_that_would_keep_too_few_versions_is_refused_naming_the_key() {
        for (line, key) in [
            (
                "keep-timestamps = 1",
                "keep-timestamps = 1 must be from 2 to 1000",
            ),
            (
                "keep-snapshots = 0",
                "keep-snapshots = 0 must be from 2 to 1000",
            ),
            (
                "keep-snapshots = -3",
                "keep-snapshots = -3 must be from 2 to 1000",
            ),
            (
                "keep-timestamps = 100000",
                "keep-timestamps = 100000 must be from 2",
            ),
        ] {
            let e = parse_with("", line).unwrap_err();
            assert!(e.message.contains(key), "{line}: {e}");
            assert!(e.message.contains("root of trust \"acme\""), "{line}: {e}");
        }
        // Not a number: toml's own message, which shows the line with the key.
        let e = parse_with("", "keep-timestamps = \"four\"").unwrap_err();
        assert!(e.message.contains("keep-timestamps"), "{e}");
    }

    #[test]
    fn a_pkcs11_key_uri_is_not_taken_for_a_path_beside_the_config() {
        let c = parse_with("", "").unwrap();
        assert_eq!(c.roots[0].timestamp_key, "pkcs11:token=t;object=ts");
        assert!(c.roots[0].snapshot_key.ends_with("/online.pem"));
    }
}
