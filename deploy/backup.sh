#!/usr/bin/env bash
# Back up a Compose deployment: the database (pg_dump, custom format) and the model registry's files.
#   deploy/backup.sh DIR            writes DIR/verdict.dump and DIR/models.tar.gz
# COMPOSE is how you call Compose for this deployment (default: docker compose -f deploy/docker-compose.yml).
# Safe while everything runs: pg_dump reads one consistent snapshot, and a version's folder appears whole (it is
# renamed into place), so at worst the archive holds a finished version the dump does not list yet.
set -euo pipefail
dir=${1:?usage: deploy/backup.sh DIR}
read -r -a compose <<< "${COMPOSE:-docker compose -f deploy/docker-compose.yml}"
mkdir -p "$dir"
"${compose[@]}" exec -T postgres pg_dump -U verdict -Fc verdict > "$dir/verdict.dump"
# A throwaway container of the app image with the models volume mounted (the migrate service's).
"${compose[@]}" run --rm --no-deps -T migrate tar -C /var/lib/verdict/models -czf - . > "$dir/models.tar.gz"
echo "backup: $dir/verdict.dump ($(du -h "$dir/verdict.dump" | cut -f1)), $dir/models.tar.gz ($(du -h "$dir/models.tar.gz" | cut -f1))"
