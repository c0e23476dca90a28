# ternd container image: built with the Rust toolchain from the workspace, run on slim
# Debian as a non-root user (UID/GID 10001, which the Kubernetes manifests run as).
#
#   docker build -t ternd .
#   docker run --rm --network host ternd --secret "$(openssl rand -base64 24)"
#
# --network host is the sane choice for a relay: it needs thousands of UDP ports (the
# relay range, 49152-65535 by default) and the clients' real addresses. Without it,
# publish the listeners and a relay range of your choosing, and tell ternd the host's
# address, as Docker's NAT sits in between (startup with a large range is slow, as
# Docker sets up one forwarding rule per port):
#
#   docker run --rm -p 3478:3478/udp -p 3478:3478/tcp -p 50000-50199:50000-50199/udp \
#     ternd --relay-ports 50000-50199 --external-ip HOST_PUBLIC_IP/$(container IP) ...
#
# Secrets: mount them as files and name them with TERND_*_FILE (TERND_SECRET_FILE,
# TERND_ADMIN_TOKEN_FILE, ...), e.g. -v /etc/ternd/secrets:/run/secrets:ro
# -e TERND_SECRET_FILE=/run/secrets/rest_secret. Kubernetes: deploy/kubernetes.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# The workspace: the server (src, and benches, which its manifest names) and its
# crates (crates/*). Tests, fuzz targets and docs stay out.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY benches ./benches
RUN cargo build --release --locked --bin ternd

FROM debian:bookworm-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ternd" \
      org.opencontainers.image.description="A STUN/TURN relay server (RFC 8489, RFC 8656, RFC 6062)" \
      org.opencontainers.image.source="https://github.com/ternd/ternd" \
      org.opencontainers.image.documentation="https://github.com/ternd/ternd/blob/main/deploy/README.md" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libcap2-bin \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ternd \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin ternd
COPY --from=build /src/target/release/ternd /usr/local/bin/ternd
# Lets the non-root user bind ports below 1024 (TURN over TLS on 443). A container
# started with every capability dropped cannot execute a binary that carries one:
# keep NET_BIND_SERVICE in its bounding set (the Kubernetes manifests do).
RUN setcap cap_net_bind_service=+ep /usr/local/bin/ternd
COPY config/ternd.toml /etc/ternd/ternd.toml
USER 10001:10001
# STUN/TURN over UDP and TCP, TURN over TLS, and the default relay port range.
EXPOSE 3478/udp 3478/tcp 5349/tcp 49152-65535/udp
# /healthz on the HTTP endpoint (default 127.0.0.1:9641), with bash alone: the image has
# no curl. Set TERND_HEALTH_ADDR when the endpoint listens elsewhere.
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/${TERND_HEALTH_ADDR:-127.0.0.1/9641} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENTRYPOINT ["/usr/local/bin/ternd", "-c", "/etc/ternd/ternd.toml"]
