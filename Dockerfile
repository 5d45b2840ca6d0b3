# syntax=docker/dockerfile:1
# The online signer, `ocituf serve` (docs/deploy.md). Multi-stage: the `ocituf` binary is
# built in a Rust image on Debian bookworm and copied into bookworm-slim, where it runs as a
# non-root numeric user. No compiler, cargo cache or sources in the runtime image.
#
#   docker build -t ocituf .
#   docker run --rm -v ./signer.toml:/etc/ocituf/signer.toml:ro -v ./keys:/etc/ocituf/keys:ro ocituf
#
# Not built in CI (no container engine there); docs/deploy.md says what was checked.

ARG RUST_VERSION=1.89
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# The whole workspace: cargo resolves every member's manifest even for one package.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ocituf \
 && install -D -m 0755 target/release/ocituf /out/ocituf

FROM docker.io/library/debian:bookworm-slim AS runtime
# CA certificates for registries over TLS; nothing else (rustls, no OpenSSL).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/ocituf
COPY --from=build /out/ocituf /usr/local/bin/ocituf
# A numeric UID/GID so Kubernetes' runAsNonRoot can check it without /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/ocituf
# signer.toml must say `listen = "0.0.0.0:8780"` (and `lock-file` under /var/lib/ocituf).
EXPOSE 8780
# No curl in bookworm-slim: bash (always there) speaks enough HTTP for /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8780 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/ocituf"]
CMD ["serve", "--config", "/etc/ocituf/signer.toml"]
