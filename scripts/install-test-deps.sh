#!/usr/bin/env bash
# Installs what the integration tests need, on Debian 12 (bookworm) as root. Idempotent and
# fast when everything is already there. See docs/testing.md.
#
# 1. Debian bookworm packages: docker-registry (CNCF distribution 2.8.2, the fallback-only
#    registry), skopeo, faketime, golang-go, jq, apache2-utils (htpasswd, for basic auth),
#    openssl (test CAs), g++ (libFuzzer, built by the fuzz targets' libfuzzer-sys), chromium (the
#    browser tests of `ocituf site`), softhsm2 and opensc (the PKCS#11 token and pkcs11-tool of
#    the hardware-key tests), postgresql (PostgreSQL 15: initdb and postgres for the signer's
#    lease tests, and the postgres user they run as when the tests run as root), pgbouncer
#    (1.18, the transaction pooling the leases must work behind), and pip
#    when python3 has none.
# 2. Python packages from tests/interop/requirements.txt and scripts/requirements-test.txt.
# 3. Two Debian trixie packages, downloaded through an isolated apt configuration (its own
#    sources list, lists and cache under $TOOLS/apt; the system's sources, lists and dpkg
#    state are not touched) and unpacked with `dpkg-deb -x` under $TOOLS/root:
#      - oras (ORAS CLI 1.2.0), an independent OCI client;
#      - golang-github-google-go-containerregistry-dev, the Go source of go-containerregistry,
#        whose pkg/registry has the native referrers API.
# 4. tools/referrers-registry (our wrapper around that registry, fixing its deviations from
#    the OCI distribution spec 1.1), built offline with bookworm's Go in GOPATH mode.
# 5. tests/browser/node_modules (playwright-core, `npm ci` from its package-lock.json), which
#    drives Debian's chromium (installed in step 1) in the browser tests of `ocituf site`.
#
# Where things land ($OCITUF_TEST_TOOLS, default /opt/ocituf-test):
#   $TOOLS/bin/oras
#   $TOOLS/bin/referrers-registry                          (the newest build)
#   $TOOLS/referrers-registry/<sha256 of main.go>/referrers-registry
#                                   (what ocituf-testkit runs: always the build of the
#                                    main.go in the checkout that runs the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
TOOLS=${OCITUF_TEST_TOOLS:-/opt/ocituf-test}

log() { echo "install-test-deps: $*" >&2; }

# The URI of the system's main Debian archive (not -security), from deb822 or one-line sources.
debian_mirror() {
    local uri
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
    if [ -z "$uri" ]; then
        uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/ && $i !~ /security/) { print $i; exit } }' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1)
    fi
    if [ -z "$uri" ]; then
        log "cannot find the Debian archive in /etc/apt/sources.list{,.d}: add one, then run this again"
        exit 1
    fi
    echo "$uri"
}

mkdir -p "$TOOLS"
# Serialise concurrent runs (several worktrees or CI jobs on one machine).
exec 9>"$TOOLS/.lock"
flock 9

# --- 1. Debian bookworm packages ---------------------------------------------------------
APT_PKGS=(docker-registry skopeo podman faketime time golang-go jq apache2-utils openssl debian-archive-keyring ca-certificates g++ chromium softhsm2 opensc postgresql pgbouncer)
if ! python3 -m pip --version >/dev/null 2>&1; then
    APT_PKGS+=(python3 python3-pip)
fi
# The browser tests' playwright-core (step 5) needs Node.js and npm; Debian's when there are none.
if ! command -v npm >/dev/null 2>&1; then
    APT_PKGS+=(nodejs npm)
fi
missing=()
for p in "${APT_PKGS[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        log "missing Debian packages: ${missing[*]}; run this script as root"
        exit 1
    fi
    # The tests start throwaway PostgreSQL servers of their own: keep the package from
    # creating (and starting) a main cluster on port 5432 (a drop-in that postgresql-common's
    # createcluster.conf includes; its own conffile is left alone).
    if [[ " ${missing[*]} " == *" postgresql "* ]] && [ ! -e /etc/postgresql-common/createcluster.d/ocituf-test.conf ]; then
        mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/ocituf-test.conf
    fi
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. Python packages --------------------------------------------------------------------
# python-tuf for the interop tests, and PyYAML for the compose.yaml parse check.
# Debian's own python3 refuses pip installs into the system without PIP_BREAK_SYSTEM_PACKAGES
# (PEP 668); pyenv's python ignores it.
PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    python3 -m pip install -q --root-user-action=ignore \
    -r tests/interop/requirements.txt -r scripts/requirements-test.txt

# --- 3. trixie packages, isolated apt, unpacked under $TOOLS/root -------------------------
TRIXIE_PKGS=(oras golang-github-google-go-containerregistry-dev)
ORAS="$TOOLS/root/usr/bin/oras"
GOCODE="$TOOLS/root/usr/share/gocode"
GGCR="$GOCODE/src/github.com/google/go-containerregistry"
STAMP="$TOOLS/root/.ocituf-trixie-packages"
if [ ! -x "$ORAS" ] || [ ! -d "$GGCR/pkg/registry" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "${TRIXIE_PKGS[*]}" ]; then
    APTDIR="$TOOLS/apt"
    rm -rf "$APTDIR" "$TOOLS/root.new"
    mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/debs" "$TOOLS/root.new"
    # bookworm's debian-archive-keyring (2023.3+deb12u1 and later) holds the trixie keys.
    # The same Debian mirror the system already uses for bookworm, asked for trixie instead.
    MIRROR=$(debian_mirror)
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main" \
        >"$APTDIR/sources.list"
    APT_ISOLATED=(
        -o "Dir::Etc::sourcelist=$APTDIR/sources.list"
        -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$APTDIR/lists"
        -o "Dir::Cache=$APTDIR/cache"
        -o "Dir::Cache::pkgcache=$APTDIR/cache/pkgcache.bin"
        -o "Dir::Cache::srcpkgcache=$APTDIR/cache/srcpkgcache.bin"
        -o "Dir::State::status=/dev/null"
        -o "APT::Sandbox::User=root"
        -o "Acquire::Languages=none"
        -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false"
    )
    log "downloading trixie packages: ${TRIXIE_PKGS[*]}"
    apt-get "${APT_ISOLATED[@]}" -qq update
    (cd "$APTDIR/debs" && apt-get "${APT_ISOLATED[@]}" -qq download "${TRIXIE_PKGS[@]}")
    for deb in "$APTDIR"/debs/*.deb; do
        log "unpacking $(basename "$deb")"
        dpkg-deb -x "$deb" "$TOOLS/root.new"
    done
    rm -rf "$TOOLS/root"
    mv "$TOOLS/root.new" "$TOOLS/root"
    echo "${TRIXIE_PKGS[*]}" >"$STAMP"
    rm -rf "$APTDIR/cache" "$APTDIR/lists"
fi
# (Captured first: `grep -q` closing the pipe early would fail the pipeline under pipefail.)
ORAS_VERSION=$("$ORAS" version | awk '/^Version:/ {print $2}')
case "$ORAS_VERSION" in
    1.2.*) ;;
    *) log "warning: expected ORAS 1.2.x, found: $ORAS_VERSION" ;;
esac
if ! grep -q 'func WithReferrersSupport' "$GGCR/pkg/registry/registry.go"; then
    log "go-containerregistry at $GGCR has no WithReferrersSupport"
    exit 1
fi
mkdir -p "$TOOLS/bin"
ln -sfn "$ORAS" "$TOOLS/bin/oras"

# --- 4. tools/referrers-registry -------------------------------------------------------------
SRC=tools/referrers-registry/main.go
HASH=$(sha256sum "$SRC" | cut -d' ' -f1)
RR="$TOOLS/referrers-registry/$HASH/referrers-registry"
if [ ! -x "$RR" ]; then
    log "building $SRC with $(go version | cut -d' ' -f3) in GOPATH mode"
    mkdir -p "$(dirname "$RR")"
    # Offline: GOPATH mode finds go-containerregistry in the unpacked trixie package; no
    # module download is possible or wanted.
    (cd tools/referrers-registry &&
        env GO111MODULE=off GOPATH="$GOCODE" GOCACHE="$TOOLS/go-cache" GOFLAGS= \
            GOPROXY=off CGO_ENABLED=0 go build -trimpath -o "$RR.tmp" .)
    mv "$RR.tmp" "$RR"
fi
ln -sfn "$RR" "$TOOLS/bin/referrers-registry"

# --- 5. Browser tests: playwright-core, pinned by tests/browser/package-lock.json ----------
# Drives Debian's chromium (step 1) for crates/cli/tests/it/site.rs; no browser download.
if [ ! -f tests/browser/node_modules/playwright-core/package.json ] ||
    ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.package-lock.json 2>/dev/null; then
    log "npm ci in tests/browser"
    (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
fi

log "ok: docker-registry $(docker-registry --version | awk '{print $3}'), skopeo $(skopeo --version | awk '{print $3}'), oras $ORAS_VERSION, referrers-registry $RR"
log "ok: tools in $TOOLS (REPO=$REPO)"
