#!/usr/bin/env bash
# CI leg behind PgBouncer in transaction mode (Debian's package, 1.18): the whole server suite and
# the events feed test, with DATABASE_URL pointing at a private PgBouncer that
# scripts/with-pgbouncer.sh starts in front of the local PostgreSQL (and stops afterwards), and
# DATABASE_DIRECT_URL at PostgreSQL itself. Expects PostgreSQL and the roster role as .ci/run
# sets them up, and `npm ci` done.
set -euo pipefail
cd "$(dirname "$0")/.."

export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1 CI=1
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

echo "::group::pgbouncer install"
if ! command -v pgbouncer >/dev/null; then
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y pgbouncer
fi
pgbouncer --version
echo "::endgroup::"

echo "::group::npm test behind PgBouncer (server suite, events feed)"
npx turbo run build --filter=@roster/server... --filter=@roster/sdk... --output-logs=errors-only
DATABASE_URL="${DATABASE_URL:-postgres://roster:roster@127.0.0.1:5432/roster}" \
  scripts/with-pgbouncer.sh sh -c '
    set -e
    npm test -w @roster/server
    cd test && npx vitest run feed.test.ts
  '
echo "::endgroup::"
