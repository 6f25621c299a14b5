# hashd container image.
#
#   docker build -t hashd .
#   docker run -d -p 6379:6379 hashd                          # no password
#   docker run -d -p 6379:6379 hashd --requirepass s3cret     # redis-server style flags
#   docker run -d -p 6379:6379 hashd redis-server --port 6379 --appendonly yes
#
# Like the official redis image: listens on 0.0.0.0:6379 inside the container, runs as a
# non-root user, works in /data, ships redis-cli (healthchecks) and a `redis-server` name for
# hashd, and passes redis-server-style arguments through (see docker/entrypoint.sh).
# Data lives in /data (the working directory, a volume): hashd snapshots there as Redis
# does (dump.rdb, Redis's default save points and a final save on SIGTERM) and loads it
# when the container starts again.

# ---- build stage ---------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin hashd \
 && strip target/release/hashd

# ---- runtime stage -------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 999 hashd \
 && useradd --system --uid 999 --gid hashd --home-dir /data --shell /usr/sbin/nologin hashd \
 && mkdir -p /data \
 && chown hashd:hashd /data
COPY --from=build /src/target/release/hashd /usr/local/bin/hashd
COPY docker/entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN ln -s hashd /usr/local/bin/redis-server

WORKDIR /data
VOLUME /data
USER hashd
EXPOSE 6379

# `redis-cli ping` answers PONG, or NOAUTH when --requirepass is set and the check has no
# password (set REDISCLI_AUTH to check with it); either means the server is serving.
# HASHD_PORT: set it when the server runs on another port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD redis-cli -p "${HASHD_PORT:-6379}" ping | grep -Eq '^(PONG|NOAUTH)' || exit 1

ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["hashd"]
