#!/usr/bin/env bash
# Runs a command against a private PgBouncer in transaction mode, the way Roster is deployed
# behind a pooler:
#
#   scripts/with-pgbouncer.sh npm test -w @roster/server
#
# It starts pgbouncer (Debian's package; 1.18 refuses the `options` startup parameter and does
# not carry named prepared statements across transactions) with its own configuration, port and
# log in a temporary directory, in front of the PostgreSQL that DATABASE_DIRECT_URL (else
# DATABASE_URL, else the local roster/roster role) names. Every database of that server is
# reachable through it under its own name, so tests can create scratch databases. The command runs
# with
#   DATABASE_URL          the same database, through PgBouncer
#   DATABASE_DIRECT_URL   the same database, directly (for LISTEN; it also makes Roster treat
#                         DATABASE_URL as a transaction-mode pooler)
# and PgBouncer stops when the command ends. Its log is printed if the command fails.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 <command> [args...]" >&2
  exit 2
fi
command -v pgbouncer >/dev/null || {
  echo "pgbouncer is not installed (apt-get install -y pgbouncer)" >&2
  exit 2
}

direct=${DATABASE_DIRECT_URL:-${DATABASE_URL:-postgres://roster:roster@127.0.0.1:5432/roster}}
# host, port, user, password, database of the direct URL, and a free local port for PgBouncer.
read -r pg_host pg_port pg_user pg_password pg_db bouncer_port < <(node -e '
  const u = new URL(process.argv[1]);
  const s = require("node:net").createServer().listen(0, "127.0.0.1", () => {
    const port = s.address().port;
    s.close(() => console.log([u.hostname, u.port || "5432", decodeURIComponent(u.username),
      decodeURIComponent(u.password), u.pathname.slice(1) || "postgres", port].join(" ")));
  });' "$direct")

dir=$(mktemp -d "${TMPDIR:-/tmp}/roster-pgbouncer.XXXXXX")
chmod 755 "$dir"
cat >"$dir/userlist.txt" <<USERS
"${pg_user}" "${pg_password}"
USERS
cat >"$dir/pgbouncer.ini" <<INI
[databases]
; any database name, passed through to the same name upstream
* = host=${pg_host} port=${pg_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${bouncer_port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = ${dir}/userlist.txt
pool_mode = transaction
max_client_conn = 5000
default_pool_size = 20
; the PostgreSQL server is shared: bound what one test run may hold
max_user_connections = 80
; hand consecutive transactions of one client to different server connections, so that state
; wrongly kept in a session (a prepared statement, a session lock, a SET) shows at once, and
; keep idle server connections long enough that such state outlives a test
server_round_robin = 1
server_idle_timeout = 60
logfile = ${dir}/pgbouncer.log
pidfile = ${dir}/pgbouncer.pid
INI

run_as=()
# PgBouncer refuses to run as root.
if [ "$(id -u)" = 0 ]; then
  chown -R postgres "$dir"
  chmod 600 "$dir/userlist.txt"
  run_as=(-u postgres)
fi

stop() {
  if [ -f "$dir/pgbouncer.pid" ]; then
    kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do [ -f "$dir/pgbouncer.pid" ] || break; sleep 0.1; done
  fi
  rm -rf "$dir"
}
trap stop EXIT

pgbouncer -d "${run_as[@]}" "$dir/pgbouncer.ini"
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p "$bouncer_port" && break
  sleep 0.1
done
pg_isready -q -h 127.0.0.1 -p "$bouncer_port" || {
  cat "$dir/pgbouncer.log" >&2
  exit 1
}

through=$(node -e 'const u = new URL(process.argv[1]); u.hostname = "127.0.0.1"; u.port = process.argv[2]; console.log(u.toString())' "$direct" "$bouncer_port")
echo "pgbouncer ${bouncer_port} (pool_mode=transaction) -> ${pg_host}:${pg_port}" >&2
status=0
DATABASE_URL="$through" DATABASE_DIRECT_URL="$direct" "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- pgbouncer log (last 40 lines) ---" >&2
  tail -n 40 "$dir/pgbouncer.log" >&2
fi
exit "$status"
