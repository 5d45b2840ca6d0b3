//! End-to-end tests of the `ocituf` binary: help text snapshots, exit codes, error messages,
//! and every command against an OCI layout (and the test registries).

mod flows;
mod help;
mod layout;
mod pinning;
mod registries;
mod registries_roles;
mod root_sign;
mod serve;
mod setup;
mod support;
mod trust;
