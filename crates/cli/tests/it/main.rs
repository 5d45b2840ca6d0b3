//! End-to-end tests of the `ocituf` binary: help text snapshots, exit codes, error messages,
//! and every command against an OCI layout (and the test registries).

mod batch;
mod bundle;
mod bundle_attacks;
mod containerd_verifier;
mod cosign;
mod damage;
mod flows;
mod help;
mod hostile;
mod layout;
mod merkle;
mod pinning;
mod pkcs11;
mod platform;
mod projects;
mod proxy;
mod proxy_auth;
mod proxy_podman;
mod proxy_support;
mod proxy_tls;
mod registries;
mod registries_roles;
mod root_sign;
mod serve;
mod serve_kill;
mod serve_replicas;
mod setup;
mod site;
mod status_bins;
mod support;
mod trust;
