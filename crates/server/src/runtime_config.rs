//! The runtime configuration that sends pulls through the proxy and nowhere else.
//!
//! - podman, CRI-O, skopeo, buildah (`registries.conf`): the upstream's `location` itself is
//!   rewritten to the proxy. No `[[registry.mirror]]`: a mirror is tried first and the
//!   primary location after it when the mirror fails (and `mirror-by-digest-only` skips the
//!   mirror for tags), so a mirror leaves the upstream reachable.
//! - containerd (`certs.d/<host>/hosts.toml`): both the `host` entry and `server`, the
//!   fallback tried after every host entry, are the proxy.
//! - Docker (`daemon.json`): `registry-mirrors` applies to Docker Hub only, and Docker falls
//!   back to Docker Hub when the mirror fails; other registries are pulled directly. The
//!   snippet says so: that door is closed only by the network (block the upstream), not by
//!   Docker's configuration.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::config::route_prefix;

/// How runtimes reach the proxy.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `HOST:PORT` of the proxy.
    pub proxy: String,
    /// The proxy speaks plain HTTP (only sensible on loopback).
    pub plain_http: bool,
    /// The CA certificate of the proxy's TLS certificate (containerd's `ca`).
    pub ca_file: Option<PathBuf>,
}

impl Endpoint {
    fn scheme(&self) -> &'static str {
        if self.plain_http {
            "http"
        } else {
            "https"
        }
    }
}

/// `registries.conf` entries (v2 format), one `[[registry]]` per upstream.
pub fn podman(endpoint: &Endpoint, upstreams: &[String]) -> String {
    let mut out = String::from(
        "# registries.conf: pulls from these registries go through the ocituf proxy only.\n\
         # The location itself is the proxy (no [[registry.mirror]]: podman falls back from a\n\
         # mirror to the location, and mirror-by-digest-only skips mirrors for tags).\n",
    );
    for host in upstreams {
        let _ = write!(
            out,
            "\n[[registry]]\nprefix = \"{host}\"\nlocation = \"{}/{}\"\n",
            endpoint.proxy,
            route_prefix(host)
        );
        if endpoint.plain_http {
            out.push_str("insecure = true\n");
        }
    }
    out
}

/// One `hosts.toml` per upstream, each headed by the path it goes to.
pub fn containerd(endpoint: &Endpoint, upstreams: &[String]) -> String {
    let mut out = String::new();
    for host in upstreams {
        let url = format!(
            "{}://{}/v2/{}",
            endpoint.scheme(),
            endpoint.proxy,
            route_prefix(host)
        );
        let ca = endpoint
            .ca_file
            .as_ref()
            .map(|c| format!("ca = \"{}\"\n", c.display()))
            .unwrap_or_default();
        let _ = write!(
            out,
            "# /etc/containerd/certs.d/{dir}/hosts.toml\n\
             # `server` is the fallback containerd tries after the host entries: the proxy too,\n\
             # so {host} is never reached directly.\n\
             server = \"{url}\"\n\
             override_path = true\n\
             capabilities = [\"pull\", \"resolve\"]\n\
             {ca}\n\
             [host.\"{url}\"]\n  \
             capabilities = [\"pull\", \"resolve\"]\n  \
             override_path = true\n{ca_host}\n",
            dir = host.replace(':', "_"),
            ca_host = ca.replace("ca = ", "  ca = "),
        );
    }
    out
}

/// `daemon.json` for Docker Hub, with what it cannot do.
pub fn docker(endpoint: &Endpoint, upstreams: &[String]) -> String {
    let mut out = serde_json::to_string_pretty(&serde_json::json!({
        "registry-mirrors": [format!("{}://{}/docker.io", endpoint.scheme(), endpoint.proxy)],
    }))
    .unwrap_or_default();
    out.push('\n');
    let others: Vec<&str> = upstreams
        .iter()
        .map(String::as_str)
        .filter(|h| !matches!(*h, "docker.io" | "registry-1.docker.io"))
        .collect();
    out.push_str(
        "// Docker uses registry-mirrors for Docker Hub only, and pulls from Docker Hub itself\n\
         // when the mirror fails: block registry-1.docker.io at the network to close that door.\n",
    );
    if !others.is_empty() {
        let _ = writeln!(
            out,
            "// {} cannot be sent through a mirror by Docker: pull them as {}/<prefix>/… \
             (prefixes: {}) and block direct access.",
            others.join(", "),
            endpoint.proxy,
            others
                .iter()
                .map(|h| route_prefix(h))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint {
            proxy: "proxy.example:5005".into(),
            plain_http: false,
            ca_file: Some("/etc/ocituf/ca.pem".into()),
        }
    }

    #[test]
    fn podman_rewrites_the_location_and_adds_no_mirror() {
        let text = podman(&endpoint(), &["r.example:5000".to_owned()]);
        assert!(
            text.contains(
                "prefix = \"r.example:5000\"\nlocation = \"proxy.example:5005/r.example-5000\"\n"
            ),
            "{text}"
        );
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        let entry = parsed["registry"][0].as_table().unwrap();
        let keys: Vec<&str> = entry.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["location", "prefix"],
            "no mirror, no insecure: {text}"
        );
        assert_eq!(
            parsed["registry"][0]["location"].as_str(),
            Some("proxy.example:5005/r.example-5000")
        );
    }

    #[test]
    fn containerd_fallback_server_is_the_proxy_too() {
        let text = containerd(&endpoint(), &["r.example".to_owned()]);
        let body = text.split_once('\n').unwrap().1;
        let parsed: toml::Value = toml::from_str(body).unwrap();
        let url = "https://proxy.example:5005/v2/r.example";
        assert_eq!(parsed["server"].as_str(), Some(url), "{text}");
        assert_eq!(parsed["host"][url]["override_path"].as_bool(), Some(true));
        assert_eq!(
            parsed["host"][url]["ca"].as_str(),
            Some("/etc/ocituf/ca.pem")
        );
    }

    #[test]
    fn docker_says_what_it_cannot_close() {
        let text = docker(
            &endpoint(),
            &["docker.io".to_owned(), "r.example".to_owned()],
        );
        assert!(
            text.contains("\"https://proxy.example:5005/docker.io\""),
            "{text}"
        );
        assert!(
            text.contains("falls back") || text.contains("when the mirror fails"),
            "{text}"
        );
        assert!(
            text.contains("r.example cannot be sent through a mirror"),
            "{text}"
        );
    }
}
