#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (Debian packages,
# Python packages, the test registries), then checks formatting and lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# A short smoke run of every fuzz target (docs/testing.md, "Fuzzing").
FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh
