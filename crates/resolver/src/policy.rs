//! The client's trust policy: which root of trust vouches for which images.
//!
//! A TOML file (`ocituf trust add` writes it; people may too):
//!
//! ```toml
//! [[trust]]
//! scope = "registry.example.com/acme/*"          # images this root of trust covers
//! repository = "registry.example.com/acme/tuf"  # where its TUF metadata lives
//! root-of-trust = "acme"                        # its name in that repository
//! root = "roots/acme.root.json"                 # pinned initial root (relative to this file)
//! root-sha256 = "9f86d0…"                       # and/or the sha256 of that root
//! ```
//!
//! A scope is a repository (`registry.example.com/acme/app`), or everything below a path
//! (`registry.example.com/acme/*`, `registry.example.com/*`, `oci:DIR:acme/*`). The most
//! specific scope that matches an image wins; two entries with the same scope are an error,
//! because which one applies would be a guess. Unknown keys are errors, not ignored: a
//! misspelt `root-sha265` must not silently unpin a root.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::reference::{check_repository, split_location, ImageReference, Location};

/// A set of images: one repository, or every repository below a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    location: Location,
    /// Repository path (exact scope) or path prefix without the trailing `/*` (may be empty
    /// for `host/*`).
    path: String,
    wildcard: bool,
}

impl Scope {
    /// Parse `host/path/*`, `host/*`, `host/repo`, `oci:DIR:path/*`, `oci:DIR:*`.
    ///
    /// # Errors
    /// [`Error::InvalidScope`] naming what is wrong.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let bad = |reason: String| Error::InvalidScope {
            scope: input.to_owned(),
            reason,
        };
        let (location, rest) = split_location(input).map_err(bad)?;
        let (path, wildcard) = if rest == "*" {
            (String::new(), true)
        } else if let Some(p) = rest.strip_suffix("/*") {
            (p.to_owned(), true)
        } else {
            (rest.to_owned(), false)
        };
        if path.contains('*') {
            return Err(bad(
                "'*' may only be the last path component (registry.example.com/acme/*)".into(),
            ));
        }
        if path.contains([':', '@']) {
            return Err(bad(
                "a scope names repositories, not tags or digests (drop the :TAG or @DIGEST)".into(),
            ));
        }
        if !path.is_empty() {
            check_repository(&path).map_err(bad)?;
        }
        Ok(Self {
            location,
            path,
            wildcard,
        })
    }

    /// Where the scope's repositories are: a registry host or a layout directory.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Whether `image` is in this scope.
    pub fn matches(&self, image: &ImageReference) -> bool {
        if image.repo.location.absolute() != self.location.absolute() {
            return false;
        }
        let repo = &image.repo.repository;
        if !self.wildcard {
            return *repo == self.path;
        }
        self.path.is_empty()
            || repo
                .strip_prefix(&self.path)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The same scope with a layout directory made absolute (see [`Location::absolute`]).
    #[must_use]
    pub fn absolute(&self) -> Self {
        Self {
            location: self.location.absolute(),
            ..self.clone()
        }
    }

    /// How specific the scope is: longer paths win, and an exact repository beats `path/*`.
    pub fn specificity(&self) -> (usize, bool) {
        let segments = if self.path.is_empty() {
            0
        } else {
            self.path.split('/').count()
        };
        (segments, !self.wildcard)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::Registry(h) => write!(f, "{h}/")?,
            Location::Layout(d) => write!(f, "oci:{}:", d.display())?,
        }
        match (self.path.is_empty(), self.wildcard) {
            (true, _) => f.write_str("*"),
            (false, true) => write!(f, "{}/*", self.path),
            (false, false) => f.write_str(&self.path),
        }
    }
}

/// How the initial root of a root of trust is pinned. At least one of the two is set; when
/// both are, the file must have that digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootPin {
    /// A root metadata file on disk (absolute, or made absolute against the policy file).
    pub file: Option<PathBuf>,
    /// The sha256 (lowercase hex) of the pinned root's exact bytes. With no file, the root is
    /// fetched from the metadata repository (version 1) and must have this digest.
    pub sha256: Option<String>,
}

/// One entry of the policy: a scope and the root of trust that vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustEntry {
    pub scope: Scope,
    /// The metadata repository, `registry.example.com/acme/tuf` or `oci:DIR:acme/tuf`.
    pub repository: crate::RepositoryReference,
    /// The root-of-trust name inside that repository.
    pub root_of_trust: String,
    pub root: RootPin,
}

/// The on-disk form of one entry.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEntry {
    scope: String,
    repository: String,
    root_of_trust: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    root: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    root_sha256: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    trust: Vec<RawEntry>,
}

/// The trust policy: entries in file order, each scope at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    entries: Vec<TrustEntry>,
}

/// Whether `name` can be a root-of-trust name (it is written into OCI annotations and tags).
pub fn check_root_of_trust_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "root-of-trust name {name:?} must be 1 to 64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
        ))
    }
}

fn check_sha256(hex: &str) -> bool {
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Largest trust policy file read: a policy is a few hundred bytes per root of trust.
pub const MAX_POLICY_LEN: u64 = 1024 * 1024;

impl TrustPolicy {
    /// Read the policy at `path`; a missing file is an empty policy.
    ///
    /// # Errors
    /// When the file cannot be read or is not a valid policy; the error names the file and,
    /// where it can, the entry and key.
    pub fn load(path: &Path) -> Result<Self, Error> {
        use ocituf_tuf::fsio::{self, FileError};
        let read_error = |source: std::io::Error| Error::PolicyRead {
            path: path.to_owned(),
            source,
        };
        let bytes = match fsio::read_bounded(path, MAX_POLICY_LEN) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(Self::default()),
            Err(FileError::TooLarge { max_len }) => {
                return Err(read_error(std::io::Error::other(format!(
                    "longer than {max_len} bytes: not a trust policy"
                ))))
            }
            Err(e) => return Err(read_error(std::io::Error::other(e))),
        };
        let text = String::from_utf8(bytes).map_err(|_| {
            read_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not UTF-8 text: the file is damaged or not a trust policy",
            ))
        })?;
        Self::parse(&text, path)
    }

    /// Parse policy text; `path` is where it came from (for errors and relative root files).
    ///
    /// # Errors
    /// [`Error::PolicySyntax`] for TOML errors and unknown or missing keys,
    /// [`Error::PolicyInvalid`] for a bad value, [`Error::DuplicateScope`] for a scope twice.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let raw: RawPolicy = toml::from_str(text).map_err(|source| Error::PolicySyntax {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut policy = Self::default();
        for (i, e) in raw.trust.into_iter().enumerate() {
            let invalid = |key: &'static str, reason: String| Error::PolicyInvalid {
                path: path.to_owned(),
                entry: i + 1,
                key,
                reason,
            };
            let scope = Scope::parse(&e.scope).map_err(|err| invalid("scope", err.to_string()))?;
            let repository = crate::RepositoryReference::parse(&e.repository)
                .map_err(|err| invalid("repository", err.to_string()))?;
            check_root_of_trust_name(&e.root_of_trust).map_err(|r| invalid("root-of-trust", r))?;
            if e.root.is_none() && e.root_sha256.is_none() {
                return Err(invalid(
                    "root",
                    "no pinned root: set root = \"FILE\" or root-sha256 = \"HEX\"".into(),
                ));
            }
            if let Some(hex) = &e.root_sha256 {
                if !check_sha256(hex) {
                    return Err(invalid(
                        "root-sha256",
                        format!("{hex:?} is not 64 lowercase hex digits"),
                    ));
                }
            }
            if let Some(file) = &e.root {
                if file.as_os_str().is_empty() {
                    return Err(invalid("root", "the file name is empty".into()));
                }
            }
            let entry = TrustEntry {
                scope,
                repository,
                root_of_trust: e.root_of_trust,
                root: RootPin {
                    file: e.root.map(|f| base.join(f)),
                    sha256: e.root_sha256,
                },
            };
            if let Some(j) = policy.entries.iter().position(|x| x.scope == entry.scope) {
                return Err(Error::DuplicateScope {
                    path: path.to_owned(),
                    scope: entry.scope.to_string(),
                    first: j + 1,
                    second: i + 1,
                });
            }
            policy.entries.push(entry);
        }
        Ok(policy)
    }

    /// The policy as TOML text.
    pub fn to_toml(&self) -> String {
        let raw = RawPolicy {
            trust: self
                .entries
                .iter()
                .map(|e| RawEntry {
                    scope: e.scope.to_string(),
                    repository: e.repository.to_string(),
                    root_of_trust: e.root_of_trust.clone(),
                    root: e.root.file.clone(),
                    root_sha256: e.root.sha256.clone(),
                })
                .collect(),
        };
        let body = toml::to_string(&raw).unwrap_or_default();
        format!("# ocituf trust policy: image scope -> root of trust (see `ocituf trust --help`)\n\n{body}")
    }

    /// Write the policy to `path` atomically (`ocituf_tuf::fsio::write_atomic`: a synced
    /// temporary file renamed into place), creating the directory if needed.
    ///
    /// # Errors
    /// [`Error::PolicyWrite`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let write = || -> std::io::Result<()> {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            // Synced before and after the rename: a power cut leaves the old policy or the
            // new one, never a truncated file.
            ocituf_tuf::fsio::write_atomic(path, self.to_toml().as_bytes())
                .map_err(std::io::Error::other)
        };
        write().map_err(|source| Error::PolicyWrite {
            path: path.to_owned(),
            source,
        })
    }

    pub fn entries(&self) -> &[TrustEntry] {
        &self.entries
    }

    /// Add an entry.
    ///
    /// # Errors
    /// [`Error::ScopeExists`] when the scope is already in the policy.
    pub fn add(&mut self, entry: TrustEntry) -> Result<(), Error> {
        if self.entries.iter().any(|e| e.scope == entry.scope) {
            return Err(Error::ScopeExists {
                scope: entry.scope.to_string(),
            });
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Remove the entry with exactly this scope and return it.
    ///
    /// # Errors
    /// [`Error::NoSuchScope`] when no entry has that scope.
    pub fn remove(&mut self, scope: &Scope) -> Result<TrustEntry, Error> {
        let i = self
            .entries
            .iter()
            .position(|e| e.scope == *scope)
            .ok_or_else(|| Error::NoSuchScope {
                scope: scope.to_string(),
            })?;
        Ok(self.entries.remove(i))
    }

    /// The entry whose scope matches `image` most specifically.
    ///
    /// # Errors
    /// [`Error::UnknownScope`] when no scope covers the image.
    pub fn lookup(&self, image: &ImageReference) -> Result<&TrustEntry, Error> {
        self.entries
            .iter()
            .filter(|e| e.scope.matches(image))
            .max_by_key(|e| e.scope.specificity())
            .ok_or_else(|| Error::UnknownScope {
                image: image.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn p(text: &str) -> Result<TrustPolicy, Error> {
        TrustPolicy::parse(text, Path::new("/etc/ocituf/policy.toml"))
    }

    fn img(s: &str) -> ImageReference {
        ImageReference::parse(s).unwrap()
    }

    const TWO: &str = r#"
[[trust]]
scope = "registry.example.com/acme/*"
repository = "registry.example.com/acme/tuf"
root-of-trust = "acme"
root = "roots/acme.json"

[[trust]]
scope = "registry.example.com/acme/secret/*"
repository = "registry.example.com/acme-secret/tuf"
root-of-trust = "secret"
root-sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

[[trust]]
scope = "oci:/srv/layout:acme/*"
repository = "oci:/srv/layout:acme/tuf"
root-of-trust = "acme"
root-sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
"#;

    #[test]
    fn longest_scope_wins() {
        let policy = p(TWO).unwrap();
        let e = policy
            .lookup(&img("registry.example.com/acme/app:1"))
            .unwrap();
        assert_eq!(e.root_of_trust, "acme");
        assert_eq!(
            e.root.file.as_deref(),
            Some(Path::new("/etc/ocituf/roots/acme.json"))
        );
        let e = policy
            .lookup(&img("registry.example.com/acme/secret/db:2"))
            .unwrap();
        assert_eq!(e.root_of_trust, "secret");
        assert_eq!(e.root.sha256.as_deref(), Some(HEX));
        let e = policy.lookup(&img("oci:/srv/layout:acme/app:1")).unwrap();
        assert_eq!(e.repository.to_string(), "oci:/srv/layout:acme/tuf");
    }

    #[test]
    fn exact_scope_beats_wildcard_of_the_same_path() {
        let text = format!(
            r#"
[[trust]]
scope = "r.io/acme/*"
repository = "r.io/acme/tuf"
root-of-trust = "a"
root-sha256 = "{HEX}"
[[trust]]
scope = "r.io/acme/app"
repository = "r.io/acme/tuf"
root-of-trust = "b"
root-sha256 = "{HEX}"
[[trust]]
scope = "r.io/*"
repository = "r.io/x/tuf"
root-of-trust = "c"
root-sha256 = "{HEX}"
"#
        );
        let policy = p(&text).unwrap();
        assert_eq!(
            policy
                .lookup(&img("r.io/acme/app:1"))
                .unwrap()
                .root_of_trust,
            "b"
        );
        assert_eq!(
            policy
                .lookup(&img("r.io/acme/app/sub:1"))
                .unwrap()
                .root_of_trust,
            "a"
        );
        assert_eq!(
            policy.lookup(&img("r.io/other:1")).unwrap().root_of_trust,
            "c"
        );
    }

    #[test]
    fn unknown_scope() {
        let policy = p(TWO).unwrap();
        for image in [
            "registry.example.com/acmex/app:1",
            "registry.example.com/acme:1",
            "other.example.com/acme/app:1",
            "oci:/srv/other:acme/app:1",
        ] {
            let err = policy.lookup(&img(image)).unwrap_err();
            assert!(matches!(err, Error::UnknownScope { .. }), "{image}: {err}");
            assert!(err.to_string().contains("ocituf trust add"), "{err}");
        }
    }

    #[test]
    fn overlapping_scopes_are_refused() {
        let text = format!(
            r#"
[[trust]]
scope = "Registry.Example.com/acme/*"
repository = "r.io/acme/tuf"
root-of-trust = "a"
root-sha256 = "{HEX}"
[[trust]]
scope = "registry.example.com/acme/*"
repository = "r.io/acme/tuf"
root-of-trust = "b"
root-sha256 = "{HEX}"
"#
        );
        let err = p(&text).unwrap_err();
        assert!(
            matches!(
                err,
                Error::DuplicateScope {
                    first: 1,
                    second: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("/etc/ocituf/policy.toml"));
    }

    #[test]
    fn malformed_pin() {
        let text = r#"
[[trust]]
scope = "r.io/acme/*"
repository = "r.io/acme/tuf"
root-of-trust = "acme"
root-sha256 = "sha256:abc"
"#;
        let err = p(text).unwrap_err();
        assert!(
            matches!(
                err,
                Error::PolicyInvalid {
                    entry: 1,
                    key: "root-sha256",
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("/etc/ocituf/policy.toml") && msg.contains("root-sha256"),
            "{msg}"
        );
    }

    #[test]
    fn missing_pin() {
        let text = r#"
[[trust]]
scope = "r.io/acme/*"
repository = "r.io/acme/tuf"
root-of-trust = "acme"
"#;
        let err = p(text).unwrap_err();
        assert!(
            matches!(err, Error::PolicyInvalid { key: "root", .. }),
            "{err}"
        );
    }

    #[test]
    fn misspelt_key_is_an_error_not_ignored() {
        let text = format!(
            r#"
[[trust]]
scope = "r.io/acme/*"
repository = "r.io/acme/tuf"
root-of-trust = "acme"
root-sha256 = "{HEX}"
root-sha265 = "{HEX}"
"#
        );
        let err = p(&text).unwrap_err();
        assert!(matches!(err, Error::PolicySyntax { .. }));
        let msg = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            msg.contains("root-sha265") && msg.contains("policy.toml"),
            "{msg}"
        );
    }

    #[test]
    fn malformed_scopes() {
        for (scope, needle) in [
            ("r.io/acme/*/app", "last path component"),
            ("r.io/acme/app:1", "not tags"),
            ("r.io/Acme/*", "lowercase"),
            ("oci:dir", "oci:DIR"),
        ] {
            let err = Scope::parse(scope).unwrap_err();
            assert!(err.to_string().contains(needle), "{scope}: {err}");
        }
    }

    #[test]
    fn round_trip_through_toml() {
        let policy = p(TWO).unwrap();
        let again = p(&policy.to_toml()).unwrap();
        assert_eq!(policy, again);
    }

    #[test]
    fn add_and_remove() {
        let mut policy = p(TWO).unwrap();
        let entry = policy.entries()[0].clone();
        assert!(matches!(
            policy.add(entry.clone()),
            Err(Error::ScopeExists { .. })
        ));
        let removed = policy.remove(&entry.scope).unwrap();
        assert_eq!(removed, entry);
        assert!(matches!(
            policy.remove(&entry.scope),
            Err(Error::NoSuchScope { .. })
        ));
        policy.add(entry).unwrap();
        assert_eq!(policy.entries().len(), 3);
    }
}
