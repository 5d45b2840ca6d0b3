//! What the proxy fronts and what it does with images no root of trust covers.

use std::str::FromStr;
use std::time::Duration;

use ocituf_oci::RegistryOptions;
use ocituf_resolver::{ImageReference, Location, Scope, TrustPolicy};

use crate::error::ConfigError;

/// What the proxy does with an image that no trust policy entry covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refuse it (`DENIED`).
    Enforce,
    /// Serve it, and log a warning for each manifest served.
    Warn,
    /// Serve it.
    Allow,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "warn" => Ok(Mode::Warn),
            "allow" => Ok(Mode::Allow),
            other => Err(format!("unknown mode {other:?}: enforce, warn or allow")),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Allow => "allow",
        })
    }
}

/// The mode for a scope without a root of trust (`registry.example.com/library/*=allow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeMode {
    pub scope: Scope,
    pub mode: Mode,
}

impl FromStr for ScopeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (scope, mode) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("{s:?} is not SCOPE=MODE (registry.example.com/lib/*=warn)"))?;
        Ok(ScopeMode {
            scope: Scope::parse(scope).map_err(|e| e.to_string())?,
            mode: mode.parse()?,
        })
    }
}

/// Everything the proxy needs besides the trust policy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Registry hosts the proxy fronts (`registry.example.com`, `127.0.0.1:5000`). Empty:
    /// every registry host named by a scope of the trust policy.
    pub upstreams: Vec<String>,
    /// Modes of scopes without a root of trust; the most specific scope wins.
    pub scope_modes: Vec<ScopeMode>,
    /// The mode of images that neither a root of trust nor [`Self::scope_modes`] cover.
    pub default_mode: Mode,
    /// Longest time a trusted state is used before it is refreshed (it is never used past
    /// the earliest expiry of its metadata either).
    pub max_state_age: Duration,
    /// How upstream registries are reached (TLS roots, plain HTTP, credentials).
    pub registry: RegistryOptions,
    /// Where trusted metadata is cached between runs.
    pub cache_dir: std::path::PathBuf,
}

impl ProxyConfig {
    /// A configuration with the defaults: enforce everywhere, states refreshed after 60 s.
    pub fn new(cache_dir: impl Into<std::path::PathBuf>) -> Self {
        ProxyConfig {
            upstreams: Vec::new(),
            scope_modes: Vec::new(),
            default_mode: Mode::Enforce,
            max_state_age: Duration::from_secs(60),
            registry: RegistryOptions::default(),
            cache_dir: cache_dir.into(),
        }
    }

    /// The upstream hosts: [`Self::upstreams`], or the registry hosts of `policy`.
    ///
    /// # Errors
    /// [`ConfigError::NoUpstream`] when there are none.
    pub fn upstream_hosts(&self, policy: &TrustPolicy) -> Result<Vec<String>, ConfigError> {
        let mut hosts: Vec<String> = if self.upstreams.is_empty() {
            policy
                .entries()
                .iter()
                .filter_map(|e| match e.scope.location() {
                    Location::Registry(h) => Some(h.clone()),
                    Location::Layout(_) => None,
                })
                .collect()
        } else {
            self.upstreams.clone()
        };
        hosts.sort();
        hosts.dedup();
        if hosts.is_empty() {
            return Err(ConfigError::NoUpstream);
        }
        Ok(hosts)
    }

    /// The mode of an image no root of trust covers.
    pub fn mode_for(&self, image: &ImageReference) -> Mode {
        self.scope_modes
            .iter()
            .filter(|m| m.scope.matches(image))
            .max_by_key(|m| m.scope.specificity())
            .map_or(self.default_mode, |m| m.mode)
    }
}

/// The path prefix that selects an upstream in a request (`/v2/<prefix>/acme/app/…`): the
/// host, with `:` (not allowed in repository names) written as `-`.
pub fn route_prefix(host: &str) -> String {
    host.replace(':', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_the_most_specific_scope_wins() {
        let mut c = ProxyConfig::new("/tmp/x");
        c.scope_modes = vec![
            "r.example/*=allow".parse().unwrap(),
            "r.example/acme/*=warn".parse().unwrap(),
        ];
        let img = |s: &str| ImageReference::parse(s).unwrap();
        assert_eq!(c.mode_for(&img("r.example/acme/app:1")), Mode::Warn);
        assert_eq!(c.mode_for(&img("r.example/lib/app:1")), Mode::Allow);
        assert_eq!(c.mode_for(&img("other.example/app:1")), Mode::Enforce);
        assert!("r.example/*=maybe".parse::<ScopeMode>().is_err());
        assert!("r.example/*".parse::<ScopeMode>().is_err());
        assert_eq!(route_prefix("127.0.0.1:5000"), "127.0.0.1-5000");
    }
}
