//! Image and repository references: `registry.example.com/acme/app:1.4`,
//! `registry.example.com/acme/app@sha256:…`, and `oci:DIR:acme/app:1.4` for an OCI
//! image-layout directory that plays a whole registry.
//!
//! Grammar (the distribution spec's, plus skopeo's `oci:` transport):
//!
//! ```text
//! image      := location "/"? repository [":" tag] ["@" digest]
//! location   := host[:port] "/"           (first component with a '.' or ':' or "localhost")
//!             | "oci:" DIR ":"            (DIR may not contain ':')
//! ```
//!
//! A reference without a host is a Docker Hub name, normalised as Docker does
//! (`alpine` → `docker.io/library/alpine`). Neither tag nor digest means tag `latest`.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use ocituf_oci::Digest;

use crate::error::Error;

/// Where a repository lives: a registry host or an OCI image-layout directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// A registry, `host` or `host:port`, lowercase.
    Registry(String),
    /// An OCI image-layout directory (`oci:DIR`), lexically normalised.
    Layout(PathBuf),
}

impl Location {
    /// The same location with a layout directory made absolute against the current
    /// directory (lexically; the directory need not exist), so that `oci:./reg` written in
    /// one place and `oci:/home/me/reg` in another compare equal.
    #[must_use]
    pub fn absolute(&self) -> Self {
        match self {
            Location::Layout(dir) if dir.is_relative() => std::path::absolute(dir)
                .map_or_else(|_| self.clone(), |d| Location::Layout(normalise_dir(&d))),
            other => other.clone(),
        }
    }

    /// The prefix written before a repository name: `host/` or `oci:DIR:`.
    fn prefix(&self) -> String {
        match self {
            Location::Registry(host) => format!("{host}/"),
            Location::Layout(dir) => format!("oci:{}:", dir.display()),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Registry(host) => f.write_str(host),
            Location::Layout(dir) => write!(f, "oci:{}", dir.display()),
        }
    }
}

/// One OCI repository (no tag, no digest): where metadata or images live.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryReference {
    pub location: Location,
    /// The repository path, `acme/app`.
    pub repository: String,
}

impl RepositoryReference {
    /// Parse `registry.example.com/acme/tuf` or `oci:DIR:acme/tuf`.
    ///
    /// # Errors
    /// [`Error::InvalidReference`] naming what is wrong.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidReference {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        // `oci:DIR` alone names repository `tuf` of the layout (docs/oci-mapping.md §9).
        if let Some(dir) = input.strip_prefix("oci:").filter(|d| !d.contains(':')) {
            if dir.is_empty() {
                return Err(bad("the layout directory in oci:DIR is empty"));
            }
            // As in every other form: what is accepted here must parse again when written
            // out as `oci:DIR:tuf` (the trust policy file is rewritten this way).
            if dir.chars().any(char::is_whitespace) {
                return Err(bad("the reference contains whitespace"));
            }
            return Ok(Self {
                location: Location::Layout(normalise_dir(Path::new(dir))),
                repository: "tuf".to_owned(),
            });
        }
        let (location, rest) = split_location(input).map_err(|r| bad(&r))?;
        if rest.contains('@') || last_segment(rest).contains(':') {
            return Err(bad(
                "a repository reference has no tag or digest (write acme/tuf, not acme/tuf:1)",
            ));
        }
        let repository = normalise_repository(&location, rest).map_err(|r| bad(&r))?;
        Ok(Self {
            location,
            repository,
        })
    }
}

impl RepositoryReference {
    /// The same repository with a layout directory made absolute.
    #[must_use]
    pub fn absolute(&self) -> Self {
        Self {
            location: self.location.absolute(),
            repository: self.repository.clone(),
        }
    }
}

impl fmt::Display for RepositoryReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.location.prefix(), self.repository)
    }
}

/// A reference to one image: a repository plus a tag, a digest, or both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    pub repo: RepositoryReference,
    /// The tag; `None` only when the reference is by digest alone.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl ImageReference {
    /// Parse an image reference (see the module docs for the grammar).
    ///
    /// # Errors
    /// [`Error::InvalidReference`] naming what is wrong.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidReference {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let (location, rest) = split_location(input).map_err(|r| bad(&r))?;
        let (name_tag, digest) = match rest.split_once('@') {
            Some((n, d)) => (
                n,
                Some(Digest::parse(d).map_err(|_| {
                    bad("the digest must be sha256: followed by 64 lowercase hex digits")
                })?),
            ),
            None => (rest, None),
        };
        // The tag separator is the last ':' after the last '/', so `host:5000/a` is not a tag.
        let slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[slash..].rfind(':') {
            Some(i) => (
                &name_tag[..slash + i],
                Some(name_tag[slash + i + 1..].to_owned()),
            ),
            None => (name_tag, None),
        };
        if let Some(tag) = &tag {
            check_tag(tag).map_err(|r| bad(&r))?;
        }
        let repository = normalise_repository(&location, name).map_err(|r| bad(&r))?;
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_owned()),
            _ => tag,
        };
        Ok(Self {
            repo: RepositoryReference {
                location,
                repository,
            },
            tag,
            digest,
        })
    }

    /// The TUF target name of this image's tag, `acme/app:1.4` (no registry host, so that
    /// signatures survive mirroring), or `None` for a reference by digest alone.
    pub fn target_name(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|t| format!("{}:{t}", self.repo.repository))
    }

    /// This reference pinned to `digest`: `registry/acme/app:1.4@sha256:…`, what
    /// `docker pull` accepts and pulls by digest.
    #[must_use]
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self.clone()
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repo)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageReference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl std::str::FromStr for RepositoryReference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Split off the location; returns the location and the repository part that follows.
pub(crate) fn split_location(input: &str) -> Result<(Location, &str), String> {
    if input.is_empty() {
        return Err("the reference is empty".into());
    }
    if input.chars().any(char::is_whitespace) {
        return Err("the reference contains whitespace".into());
    }
    if let Some(rest) = input.strip_prefix("oci:") {
        let (dir, repo) = rest.split_once(':').ok_or_else(|| {
            "an OCI layout reference is oci:DIR:REPOSITORY[:TAG] (e.g. oci:./layout:acme/app:1.4)"
                .to_owned()
        })?;
        if dir.is_empty() {
            return Err("the layout directory in oci:DIR:… is empty".into());
        }
        return Ok((Location::Layout(normalise_dir(Path::new(dir))), repo));
    }
    match input.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            if !valid_registry_host(first) {
                return Err(format!(
                    "{first:?} is not a registry host (host or host:port: letters, digits, \
                     '-' and '.', or [IPv6]; an OCI layout is written oci:DIR:…, lowercase)"
                ));
            }
            Ok((Location::Registry(first.to_ascii_lowercase()), rest))
        }
        _ => Ok((Location::Registry("docker.io".to_owned()), input)),
    }
}

/// `host[:port]` of the distribution reference grammar: DNS labels (letters, digits, `-`
/// inside) separated by `.`, or an IPv6 address in brackets, then an optional decimal port.
fn valid_registry_host(h: &str) -> bool {
    let valid_port =
        |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = h.strip_prefix('[') {
        let Some((addr, tail)) = rest.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty()
            && addr.contains(':')
            && addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        return addr_ok && (tail.is_empty() || tail.strip_prefix(':').is_some_and(valid_port));
    }
    let (host, port) = match h.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label_ok) && port.is_none_or(valid_port)
}

/// Lexical normalisation (no file system access): drops `.` and trailing `/`.
pub(crate) fn normalise_dir(dir: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in dir.components() {
        match c {
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

fn normalise_repository(location: &Location, name: &str) -> Result<String, String> {
    check_repository(name)?;
    if matches!(location, Location::Registry(h) if h == "docker.io") && !name.contains('/') {
        return Ok(format!("library/{name}"));
    }
    Ok(name.to_owned())
}

/// The distribution spec's repository name grammar (the one implementation in
/// [`ocituf_oci::names`]), with a message that says what is wrong.
pub(crate) fn check_repository(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the repository name is empty".into());
    }
    if name.len() > 255 {
        return Err("the repository name is longer than 255 characters".into());
    }
    if let Some(segment) = name
        .split('/')
        .find(|segment| !ocituf_oci::names::valid_repository_name(segment))
    {
        return Err(format!(
            "repository path component {segment:?} must be lowercase letters and digits, \
             separated by '.', '_', '__' or '-'"
        ));
    }
    Ok(())
}

/// The distribution spec's tag grammar (the one implementation in [`ocituf_oci::names`]).
fn check_tag(tag: &str) -> Result<(), String> {
    if ocituf_oci::names::valid_tag(tag) {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// Found by the `trust_policy` fuzz target in the long run (2026-12-07): the scope
    /// `oCi:registry:!cme/*` was read as registry host `oCi:registry:!cme`, written back
    /// lowercased as `oci:registry:!cme/*`, an OCI layout scope with an invalid repository,
    /// so the policy `trust add` wrote could not be read again.
    #[test]
    fn fuzz_crash_registry_host_outside_the_grammar_is_refused() {
        for input in [
            "oCi:registry:!cme/*",
            "a:b:c/app",
            "ex!ample.com/app",
            "[::1/app",
            "h:99999x/a",
        ] {
            let err = ImageReference::parse(input).unwrap_err();
            assert!(
                err.to_string().contains("not a registry host"),
                "{input:?}: {err}"
            );
        }
        for input in [
            "localhost:5000/a/b:1",
            "127.0.0.1:5000/a",
            "[::1]:5000/a",
            "Registry.Example.com/a",
        ] {
            let parsed = ImageReference::parse(input).unwrap();
            assert_eq!(
                ImageReference::parse(&parsed.to_string()).unwrap(),
                parsed,
                "{input}"
            );
        }
    }

    /// Found by the `trust_policy` fuzz target (fuzz/artifacts, 2026-12-07): `oci:DIR` with
    /// whitespace in DIR was accepted, but its written form `oci:DIR:tuf` was refused, so
    /// `ocituf trust add` could write a policy file that no later command could read.
    #[test]
    fn fuzz_crash_layout_dir_with_whitespace_is_refused_in_every_form() {
        for input in ["oci:/tmp/a b", "oci:/tmp/a b:tuf", "oci:/tmp/a\tb"] {
            let err = RepositoryReference::parse(input).unwrap_err();
            assert!(err.to_string().contains("whitespace"), "{input:?}: {err}");
        }
        // Every accepted form writes back to text that parses to the same reference.
        for input in [
            "oci:/tmp/ab",
            "oci:./reg:acme/tuf",
            "localhost:5000/acme/tuf",
        ] {
            let parsed = RepositoryReference::parse(input).unwrap();
            assert_eq!(
                RepositoryReference::parse(&parsed.to_string()).unwrap(),
                parsed
            );
        }
    }

    #[test]
    fn registry_tag() {
        let r = ImageReference::parse("registry.example.com/acme/app:1.4").unwrap();
        assert_eq!(
            r.repo.location,
            Location::Registry("registry.example.com".into())
        );
        assert_eq!(r.repo.repository, "acme/app");
        assert_eq!(r.tag.as_deref(), Some("1.4"));
        assert_eq!(r.digest, None);
        assert_eq!(r.target_name().as_deref(), Some("acme/app:1.4"));
        assert_eq!(r.to_string(), "registry.example.com/acme/app:1.4");
    }

    #[test]
    fn registry_with_port_and_no_tag_is_latest() {
        let r = ImageReference::parse("127.0.0.1:5000/acme/app").unwrap();
        assert_eq!(r.repo.location, Location::Registry("127.0.0.1:5000".into()));
        assert_eq!(r.tag.as_deref(), Some("latest"));
    }

    #[test]
    fn digest_only_and_tag_plus_digest() {
        let r = ImageReference::parse(&format!("registry.example.com/acme/app@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_ref().unwrap().as_str(), D);
        assert_eq!(r.target_name(), None);
        let r = ImageReference::parse(&format!("localhost/acme/app:1@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.to_string(), format!("localhost/acme/app:1@{D}"));
    }

    #[test]
    fn layout() {
        let r = ImageReference::parse("oci:./some/dir/:acme/app:1.4").unwrap();
        assert_eq!(r.repo.location, Location::Layout(PathBuf::from("some/dir")));
        assert_eq!(r.repo.repository, "acme/app");
        assert_eq!(r.tag.as_deref(), Some("1.4"));
        assert_eq!(r.to_string(), "oci:some/dir:acme/app:1.4");
        let r = ImageReference::parse(&format!("oci:/abs:acme/app@{D}")).unwrap();
        assert_eq!(r.repo.location, Location::Layout(PathBuf::from("/abs")));
        assert!(r.digest.is_some());
    }

    #[test]
    fn docker_hub_normalisation() {
        let r = ImageReference::parse("alpine:3").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine:3");
        let r = ImageReference::parse("acme/app").unwrap();
        assert_eq!(r.to_string(), "docker.io/acme/app:latest");
    }

    #[test]
    fn repository_reference() {
        let r = RepositoryReference::parse("registry.example.com/acme/tuf").unwrap();
        assert_eq!(r.to_string(), "registry.example.com/acme/tuf");
        let r = RepositoryReference::parse("oci:dir:acme/tuf").unwrap();
        assert_eq!(r.to_string(), "oci:dir:acme/tuf");
        assert!(RepositoryReference::parse("oci:dir:acme/tuf:1").is_err());
        let r = RepositoryReference::parse("oci:dir").unwrap();
        assert_eq!(r.to_string(), "oci:dir:tuf");
        assert!(RepositoryReference::parse(&format!("r.io/acme/tuf@{D}")).is_err());
    }

    #[test]
    fn malformed_references_are_refused_with_a_reason() {
        for (input, needle) in [
            ("", "empty"),
            ("registry.example.com/Acme/app:1", "lowercase"),
            ("registry.example.com/acme/app:-x", "tag"),
            ("registry.example.com/acme/app@sha256:12", "digest"),
            ("registry.example.com/acme/app@md5:12", "digest"),
            ("oci:dir", "oci:DIR:REPOSITORY"),
            ("oci::acme/app", "empty"),
            ("registry.example.com/acme//app", "component"),
            ("registry.example.com/acme/app:1 2", "whitespace"),
            ("registry.example.com/../app", "component"),
        ] {
            let err = ImageReference::parse(input).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(needle), "{input:?}: {msg}");
            assert!(matches!(err, Error::InvalidReference { .. }));
        }
    }
}
