#!/usr/bin/env bash
# Installs what the integration tests need. Idempotent: skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "install-test-deps: nothing to install yet"
