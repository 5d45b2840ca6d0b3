#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (libFuzzer through cargo-fuzz, stable toolchain, no
# sanitizer) for FUZZ_SECONDS each (default 20: the CI smoke run), starting from the seeds in
# fuzz/seeds/TARGET plus whatever corpus earlier runs left in $FUZZ_CORPUS (default
# target/fuzz-corpus, outside git). Installs cargo-fuzz from crates.io when it is missing.
# fuzz/regressions/TARGET holds inputs that once crashed a target (each also a regression
# test named after it in the crate it broke): they are run first, every time.
# Exits non-zero when a target crashes; the crashing input is in fuzz/artifacts/TARGET/.
# A long run, as recorded in docs/testing.md:  FUZZ_SECONDS=1200 FUZZ_JOBS=2 scripts/fuzz.sh
# Prints the CPU seconds every target used (user + system, from /proc of the fuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-20}
JOBS=${FUZZ_JOBS:-1}
CORPUS=${FUZZ_CORPUS:-$PWD/target/fuzz-corpus}
CARGO_FUZZ_VERSION=0.13.2
log() { echo "fuzz: $*" >&2; }

if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

FUZZ=(cargo fuzz)
OPTS=(--sanitizer none -O -a --fuzz-dir fuzz)
"${FUZZ[@]}" build "${OPTS[@]}"
targets=$("${FUZZ[@]}" list --fuzz-dir fuzz)
BIN=fuzz/target/x86_64-unknown-linux-gnu/release
total=0
for t in $targets; do
    mkdir -p "$CORPUS/$t" "fuzz/artifacts/$t"
    start=$(date +%s)
    # -jobs runs that many fuzzer processes on one corpus; the CPU time of every process
    # (children included) is what `times` reports for the subshell.
    cpu=$( (
        "$BIN/$t" "$CORPUS/$t" "fuzz/seeds/$t" $(ls -d "fuzz/regressions/$t" 2>/dev/null) \
            -max_total_time="$SECONDS_EACH" -rss_limit_mb=1024 -timeout=10 \
            -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 \
            -jobs="$JOBS" -workers="$JOBS" >"$CORPUS/$t.log" 2>&1
        rc=$?
        # (Not `times | awk`: the left side of a pipe is a fork, which has no children.)
        times >"$CORPUS/$t.times"
        awk 'NR==2 { split($1, u, "m"); split($2, s, "m"); printf "%.0f\n", u[1]*60 + u[2] + s[1]*60 + s[2] }' "$CORPUS/$t.times"
        exit "$rc"
    ) ) || {
        log "$t: CRASHED after $(( $(date +%s) - start )) s and ${cpu:-?} CPU s; input and log:"
        ls -1 "fuzz/artifacts/$t" >&2
        tail -n 40 "$CORPUS/$t.log" fuzz-*.log 2>/dev/null >&2 || true
        exit 1
    }
    total=$((total + cpu))
    execs=$(grep -h 'stat::number_of_executed_units' "$CORPUS/$t.log" fuzz-*.log 2>/dev/null | awk '{s += $2} END {print s + 0}')
    log "$t: ok, $execs runs, ${cpu} CPU s, corpus $(ls "$CORPUS/$t" | wc -l) inputs"
    rm -f fuzz-*.log
done
log "all targets ok: $total CPU s in all"
