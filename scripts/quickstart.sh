#!/usr/bin/env bash
# The quick start on the embedded default: an OCI image-layout directory, no registry needed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p ocituf
target/release/ocituf
