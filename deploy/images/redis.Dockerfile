# Redis from Debian's packages, for hosts that cannot pull the public redis image (REDIS_IMAGE=verdict-redis:local).
# Same command line as the public image: `redis-server [options]`, data (the append-only file) in /data.
#   docker build --network host -f deploy/images/redis.Dockerfile -t verdict-redis:local deploy/images
ARG BASE_IMAGE=verdict-debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
WORKDIR /data
VOLUME /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
