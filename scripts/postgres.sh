# A throwaway PostgreSQL for the tests. Sourced by scripts/test.sh (which defines
# apt_install); `start_postgres` exports TEND_TEST_POSTGRES_URL and arranges for the
# cluster to be stopped and removed when the shell exits, on failure too.
#
# A URL already in TEND_TEST_POSTGRES_URL is used as it is (a server of your own). Else
# Debian's `postgresql` package is installed if no server binaries are found, a cluster is
# made with initdb in a temporary directory (as the `postgres` user when run as root:
# initdb refuses root), and started with pg_ctl on a free loopback port, listening on
# 127.0.0.1 only, trusting local connections (nothing else can reach it). Where that
# cannot be done, it says why and exports nothing: the PostgreSQL tests then fail under
# CI and say SKIPPED elsewhere.

# The directory of PostgreSQL's server binaries (initdb, pg_ctl), or nothing.
postgres_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return
    fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

# A loopback port nothing listens on, from 55431 up.
free_port() {
  local port
  for port in $(seq 55431 55530); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

start_postgres() {
  if [ -n "${TEND_TEST_POSTGRES_URL:-}" ]; then
    echo "PostgreSQL tests use TEND_TEST_POSTGRES_URL as given"
    return
  fi
  local bin
  bin=$(postgres_bin)
  if [ -z "$bin" ]; then
    local why
    why=$(apt_install postgresql)
    if [ -n "$why" ]; then
      echo "no PostgreSQL for the tests: $why"
      return
    fi
    bin=$(postgres_bin)
  fi
  if [ -z "$bin" ]; then
    echo "no PostgreSQL for the tests: no initdb and pg_ctl found after installing"
    return
  fi
  local port
  port=$(free_port)
  if [ -z "$port" ]; then
    echo "no PostgreSQL for the tests: no free loopback port in 55431-55530"
    return
  fi
  TEND_PG_DIR=$(mktemp -d /tmp/tend-pg.XXXXXX)
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$TEND_PG_DIR"
    as=(runuser -u postgres --)
  fi
  trap stop_postgres EXIT
  local log="$TEND_PG_DIR/server.log"
  if ! "${as[@]}" "$bin/initdb" -D "$TEND_PG_DIR/data" -U postgres --auth=trust \
    --no-sync -E UTF8 >"$TEND_PG_DIR/initdb.log" 2>&1; then
    echo "no PostgreSQL for the tests: initdb failed:"
    tail -n 20 "$TEND_PG_DIR/initdb.log"
    return
  fi
  # Sockets in the cluster's own directory; TCP on 127.0.0.1 only.
  if ! "${as[@]}" "$bin/pg_ctl" -D "$TEND_PG_DIR/data" -l "$log" -w -t 60 start \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $TEND_PG_DIR -c max_connections=200" \
    >/dev/null; then
    echo "no PostgreSQL for the tests: pg_ctl start failed:"
    tail -n 20 "$log" 2>/dev/null
    return
  fi
  TEND_PG_BIN=$bin
  TEND_PG_AS=("${as[@]}")
  export TEND_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL for the tests: $TEND_TEST_POSTGRES_URL (cluster in $TEND_PG_DIR)"
}

stop_postgres() {
  if [ -n "${TEND_PG_DIR:-}" ] && [ -d "$TEND_PG_DIR" ]; then
    if [ -n "${TEND_PG_BIN:-}" ]; then
      "${TEND_PG_AS[@]}" "$TEND_PG_BIN/pg_ctl" -D "$TEND_PG_DIR/data" -m immediate -w stop \
        >/dev/null 2>&1 || true
    fi
    rm -rf "$TEND_PG_DIR"
  fi
}
