# STAND-IN for the official postgres image, built from a Debian bookworm base with Debian's
# PostgreSQL 15, for machines that cannot pull images (CI). Same contract as far as the compose
# stack uses it: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, *.sql in
# /docker-entrypoint-initdb.d run once, data in /var/lib/postgresql/data, pg_isready on PATH.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /docker-entrypoint-initdb.d /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/standin-postgres
RUN chmod 0755 /usr/local/bin/standin-postgres
USER postgres
EXPOSE 5432
CMD ["/usr/local/bin/standin-postgres"]
