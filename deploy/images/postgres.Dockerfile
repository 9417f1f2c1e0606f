# PostgreSQL from Debian's packages, for hosts that cannot pull the public postgres image. It understands the same
# variables as the public image (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA) and the same command line
# (`postgres -c name=value ...`), so docker-compose.yml works with either (POSTGRES_IMAGE=verdict-postgres:local).
#   docker build --network host -f deploy/images/postgres.Dockerfile -t verdict-postgres:local deploy/images
ARG BASE_IMAGE=verdict-debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/lib/postgresql/*/bin /usr/lib/postgresql/current \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
ENV PATH=/usr/lib/postgresql/current:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
CMD ["postgres"]
