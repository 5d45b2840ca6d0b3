#!/usr/bin/env bash
# The quick start on the embedded default: an OCI image-layout directory, no registry needed.
#
# Builds ocituf, makes keys in a temporary directory, creates a root of trust, pushes a tiny
# image into the layout, delegates it to a team, signs it with the team key, publishes,
# verifies it, then moves the tag to another digest (what a compromised registry could do)
# and checks that ocituf refuses it with exit code 1. The script fails if the tampered image
# is NOT refused.
#
# Needs only cargo. Everything lives in a temporary directory (kept with KEEP=1), and the
# trust policy and cache are isolated there: your own ~/.config/ocituf is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."

# OCITUF=/path/to/ocituf skips the build (used by the CLI tests to run this script).
if [ -z "${OCITUF:-}" ]; then
    cargo build --release --locked -p ocituf
    # Where cargo put it, as cargo itself says: honours CARGO_TARGET_DIR,
    # CARGO_BUILD_TARGET_DIR and build.target-dir of a .cargo/config.toml alike.
    TARGET_DIR=$(cargo metadata --format-version 1 --no-deps --locked |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    OCITUF="${TARGET_DIR:-$PWD/target}/release/ocituf"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ocituf-quickstart.XXXXXX")
if [ "${KEEP:-0}" != 1 ]; then
    trap 'rm -rf "$WORK"' EXIT
fi
cd "$WORK"
export OCITUF_CONFIG="$WORK/config/policy.toml"
export OCITUF_CACHE_DIR="$WORK/cache"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "quick start in $WORK"

# 1. Keys: one offline root key, one targets key, one online key, one CI key for the team.
step "$OCITUF" key generate --out root.pem
step "$OCITUF" key generate --out targets.pem
step "$OCITUF" key generate --type ecdsa-p256 --out online.pem
step "$OCITUF" key generate --out app-ci.pem --public-out app-ci.pub.pem

# 2. A root of trust "acme" whose metadata lives in repository acme/tuf of the layout ./registry.
step "$OCITUF" init oci:registry:acme/tuf --name acme \
    --root-key root.pem --targets-key targets.pem \
    --snapshot-key online.pem --timestamp-key online.pem \
    --out-root acme.root.json

# 3. The organization delegates acme/app to the app team's CI key. Writers check the
#    registry's root chain against the pinned root (--root, or the trust policy entry).
step "$OCITUF" delegate oci:registry:acme/tuf --name acme --role app --root acme.root.json \
    --path 'acme/app:*' --path 'acme/app@*' --key app-ci.pub.pem --signing-key targets.pem

# 4. A client pins the root (got out of band) for the images under acme/.
step "$OCITUF" trust add 'oci:registry:acme/*' --repo oci:registry:acme/tuf --name acme \
    --root acme.root.json

# 5. CI pushes an image and signs it with the team key (as an env secret), then the online
#    keys publish a new snapshot and timestamp.
step "$OCITUF" example-image oci:registry:acme/app:1.0 --message "hello from acme/app 1.0"
export APP_CI_KEY="$(cat app-ci.pem)"
step "$OCITUF" sign oci:registry:acme/app:1.0 --key env:APP_CI_KEY
step "$OCITUF" publish oci:registry:acme/tuf --name acme \
    --snapshot-key online.pem --timestamp-key online.pem

# 6. Clients verify.
step "$OCITUF" status oci:registry:acme/tuf --name acme
step "$OCITUF" verify oci:registry:acme/app:1.0
PINNED=$("$OCITUF" resolve oci:registry:acme/app:1.0)
echo "pull by: $PINNED"

# 7. Tamper: the registry moves the tag to another image. ocituf must refuse (exit 1).
step "$OCITUF" example-image oci:registry:acme/app:1.0 --message "evil"
printf '\n\033[1m$ %s\033[0m\n' "$OCITUF verify oci:registry:acme/app:1.0   # after tampering"
set +e
"$OCITUF" verify oci:registry:acme/app:1.0
code=$?
set -e
if [ "$code" -ne 1 ]; then
    echo "quickstart: FAILED: the tampered image was not refused (exit code $code, expected 1)" >&2
    exit 1
fi
echo
echo "quickstart: ok: the signed image verified, and the tampered tag was refused (exit 1)"
