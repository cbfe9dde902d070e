#!/usr/bin/env bash
# The dev/test PostgreSQL server: a private cluster on 127.0.0.1, from Debian's packages.
#   dev/postgres.sh install | start | stop | status | url
# Set DATABASE_URL_POSTGRES or TEST_POSTGRES_URL to use another server instead: start then does nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Below the kernel's ephemeral range (32768-60999): a client's source port can never hold it.
PG_PORT="${DEV_POSTGRES_PORT:-15432}"
PG_DB=sip_trunks
DIR="$STATE/postgres"
DATA="$DIR/data"
SOCKDIR="$DIR/run"
LOG="$DIR/server.log"

# Newest installed server, or empty.
newest_bin() {
  local bins
  bins=$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n 1) || true
  [ -n "$bins" ] && dirname "$bins"
}

# The binaries that match the cluster's data directory once it exists, else the newest.
pg_bin() {
  local v
  if [ -f "$DATA/PG_VERSION" ]; then
    v=$(cat "$DATA/PG_VERSION")
    [ -x "/usr/lib/postgresql/$v/bin/postgres" ] ||
      die "$DATA was made by PostgreSQL $v, which is not installed: remove $DIR to start afresh"
    echo "/usr/lib/postgresql/$v/bin"
  else
    newest_bin || die "no PostgreSQL server installed: run $0 install"
  fi
}

# Postgres refuses to run as root: its commands run as the postgres OS user, from a folder it can read.
as_pg() { (cd / && runuser -u postgres -- "$@"); }



install() {
  local bin
  if bin=$(newest_bin) && id postgres >/dev/null 2>&1; then
    ok "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') installed in ${bin%/bin}"
    return
  fi
  mkdir -p "$DIR"
  apt_ensure postgresql PostgreSQL "$DIR/apt.log"
  bin=$(newest_bin) || die "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/postgres exists"
  ok "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') installed in ${bin%/bin}"
}

# The postgres user must be able to walk down to $DIR: add o+x to each parent folder that stops it.
make_traversable() {
  local d=$DIR parents=() i
  while d=$(dirname "$d") && [ "$d" != / ]; do parents=("$d" "${parents[@]}"); done
  for i in "${parents[@]}"; do  # from the top down, as access is checked
    if ! as_pg test -x "$i"; then
      chmod o+x "$i"
      ok "made $i traversable for the postgres user (chmod o+x)"
    fi
  done
}

write_config() {
  local sockets="'$SOCKDIR'"
  # A unix socket path must fit in 107 bytes; past that the server listens on TCP only.
  if [ $((${#SOCKDIR} + 16)) -gt 107 ]; then
    sockets="''"
    ok "state path too long for a unix socket ($SOCKDIR): TCP only"
  fi
  cat >"$DATA/postgresql.dev.conf" <<CONF
# Written by dev/postgres.sh at each start; included from postgresql.conf.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = $sockets
# A throwaway dev/test cluster: durability is traded for speed. A crash of the machine may
# corrupt it; remove $DIR and start again.
fsync = off
synchronous_commit = off
CONF
  chown postgres:postgres "$DATA/postgresql.dev.conf"
}

running() { [ -f "$DATA/PG_VERSION" ] && as_pg "$(pg_bin)/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

# The port of the running cluster (4th line of postmaster.pid), else the configured one.
port() {
  local p=""
  running && p=$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null)
  echo "${p:-$PG_PORT}"
}

start() {
  local bin i exists v
  for v in DATABASE_URL_POSTGRES TEST_POSTGRES_URL; do
    if [ -n "${!v:-}" ]; then ok "using the PostgreSQL server of $v: dev cluster not started"; return; fi
  done
  install
  if running; then ok "PostgreSQL already running on 127.0.0.1:$(port) (data: $DATA)"; return; fi
  if port_open 127.0.0.1 "$PG_PORT"; then die "port $PG_PORT is taken by another process (set DEV_POSTGRES_PORT)"; fi
  bin=$(pg_bin)
  mkdir -p "$DATA" "$SOCKDIR"
  chown postgres:postgres "$DIR" "$DATA" "$SOCKDIR"
  chmod 700 "$DATA"
  make_traversable
  if [ ! -f "$DATA/PG_VERSION" ]; then
    step "Creating the dev cluster in $DATA (initdb, first time only)"
    # trust: no password on loopback, which is all this cluster listens on (and all its pg_hba.conf has).
    as_pg "$bin/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 -A trust >"$DIR/initdb.log" 2>&1 ||
      { tail -n 30 "$DIR/initdb.log" >&2; die "initdb failed (log: $DIR/initdb.log)"; }
    echo "include_if_exists = 'postgresql.dev.conf'" >>"$DATA/postgresql.conf"
    ok "cluster created"
  fi
  write_config
  step "Starting PostgreSQL $(cat "$DATA/PG_VERSION") on 127.0.0.1:$PG_PORT"
  touch "$LOG" && chown postgres:postgres "$LOG"
  (close_inherited_fds; as_pg "$bin/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 >/dev/null) ||
    { tail -n 30 "$LOG" >&2; die "PostgreSQL did not start (log: $LOG)"; }
  for ((i = 0; i < 150; i++)); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
    ((i % 25 == 24)) && printf '    still waiting for PostgreSQL (%ss)\n' $((i / 5 + 1)) >&2
    sleep 0.2
  done
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || { tail -n 30 "$LOG" >&2; die "PostgreSQL is not ready after 30s"; }
  ok "PostgreSQL is accepting connections on 127.0.0.1:$PG_PORT"
  exists=$("$bin/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") || die "could not query the server"
  if [ "$exists" != 1 ]; then
    "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$PG_DB" || die "could not create database $PG_DB"
    ok "database $PG_DB created"
  fi
}

stop() {
  if ! running; then ok "PostgreSQL not running"; return; fi
  as_pg "$(pg_bin)/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >/dev/null || die "PostgreSQL did not stop (log: $LOG)"
  ok "PostgreSQL stopped"
}

status() {
  if running; then echo "PostgreSQL running, 127.0.0.1:$(port), data $DATA"; else echo "PostgreSQL stopped"; return 1; fi
}

url() { echo "postgresql+asyncpg://postgres@127.0.0.1:$(port)/$PG_DB"; }

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) url ;;
  *) echo "usage: $0 install|start|stop|status|url" >&2; exit 2 ;;
esac
