#!/usr/bin/env bash
# Restore a backup made by deploy/backup.sh into a Compose deployment whose postgres service runs.
#   deploy/restore.sh DIR
# It stops web, the workers and beat, replaces the database and the model files, then starts them again.
# COMPOSE as for backup.sh. Workers on other machines must be stopped by hand first (they hold connections).
set -euo pipefail
dir=${1:?usage: deploy/restore.sh DIR}
[ -s "$dir/verdict.dump" ] && [ -s "$dir/models.tar.gz" ] || { echo "restore: $dir lacks verdict.dump or models.tar.gz" >&2; exit 1; }
read -r -a compose <<< "${COMPOSE:-docker compose -f deploy/docker-compose.yml}"
apps=(web worker-cpu worker-gpu beat)
"${compose[@]}" stop "${apps[@]}"
# A fresh, empty database, then the dump (its owner is the verdict role, as the postgres service creates it).
"${compose[@]}" exec -T postgres psql -q -v ON_ERROR_STOP=1 -U verdict -d postgres \
  -c 'DROP DATABASE IF EXISTS verdict WITH (FORCE)' -c 'CREATE DATABASE verdict OWNER verdict'
"${compose[@]}" exec -T postgres pg_restore -U verdict -d verdict --no-owner --exit-on-error < "$dir/verdict.dump"
"${compose[@]}" run --rm --no-deps -T migrate sh -c \
  'find /var/lib/verdict/models -mindepth 1 -delete && tar -C /var/lib/verdict/models -xzf -' < "$dir/models.tar.gz"
# Only the services that were meant to run: a deployment without a local GPU worker keeps it at zero.
for service in "${apps[@]}"; do
  if [ -n "$("${compose[@]}" ps -q "$service" 2>/dev/null)" ]; then "${compose[@]}" start "$service"; fi
done
echo "restore: database and model files from $dir are back; web, workers and beat restarted"
