# ternd container image: build with the Rust toolchain, run on slim Debian as non-root.
#
#   docker build -t ternd .
#   docker run --rm --network host ternd --secret "$(openssl rand -base64 24)"
#
# --network host is the sane choice for a relay: it needs thousands of UDP ports
# (relay range 49152-65535 by default), and Docker's port publishing per port is slow
# and adds a NAT in the path.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY benches ./benches
COPY config ./config
RUN cargo build --release --locked --bin ternd

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libcap2-bin \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --shell /usr/sbin/nologin ternd
COPY --from=build /src/target/release/ternd /usr/local/bin/ternd
# Lets the non-root user bind ports below 1024 (TURN over TLS on 443).
RUN setcap cap_net_bind_service=+ep /usr/local/bin/ternd
COPY config/ternd.toml /etc/ternd/ternd.toml
USER ternd
# STUN/TURN over UDP and TCP, TURN over TLS, and the default relay port range.
EXPOSE 3478/udp 3478/tcp 5349/tcp 49152-65535/udp
# /healthz on the HTTP endpoint (default 127.0.0.1:9641), with bash alone: the image has no curl.
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9641 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENTRYPOINT ["/usr/local/bin/ternd", "-c", "/etc/ternd/ternd.toml"]
