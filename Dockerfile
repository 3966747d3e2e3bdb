# syntax=docker/dockerfile:1
# footfall in a container: a Rust builder stage, then a slim Debian runtime with only the
# binary, the static files (t.js, the console, the demo, the API reference) and the
# shipped config.toml, run as a non-root user.
#
#   docker build -t footfall .
#   docker compose up -d          # with Redis: see compose.yaml and README → Deploy
#
# Not built in footfall's own tests (no container engine there); the environment that
# compose.yaml sets is applied to the binary in scripts/test.sh instead.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock config.toml ./
COPY bench bench
COPY src src
# BuildKit caches the registry and the target folder between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package footfall --bin footfall \
 && cp target/release/footfall /usr/local/bin/footfall

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin footfall
COPY --from=build /usr/local/bin/footfall /usr/local/bin/footfall
COPY static /opt/footfall/static
COPY config.toml /etc/footfall/config.toml
WORKDIR /opt/footfall
# The container listens on all its interfaces; the static files are where they were copied.
# Everything else comes from /etc/footfall/config.toml (mount the one `footfall init`
# wrote over it) and FOOTFALL__ variables.
ENV FOOTFALL__SERVER__BIND=0.0.0.0:8080 \
    FOOTFALL__SERVER__STATIC_DIR=/opt/footfall/static \
    FOOTFALL__SERVER__JSON_LOGS=true
USER footfall
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz >/dev/null || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["footfall", "--config", "/etc/footfall/config.toml"]
CMD ["serve"]
