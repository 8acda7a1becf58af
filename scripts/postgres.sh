# Sourced by scripts/test: exports SWITCHBOARD_TEST_PG pointing at a PostgreSQL server the
# tests may create databases on. Uses $SWITCHBOARD_TEST_PG if set, else the local server on
# 127.0.0.1:5432 (trust auth), starting it if it is installed but stopped, installing it from
# Debian's packages if absent; if that server does not accept passwordless connections, a
# throw-away cluster with trust auth is started under /tmp instead.

pg_ok() { psql "$1" -tAc 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
    local url="${SWITCHBOARD_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
    if pg_ok "$url"; then export SWITCHBOARD_TEST_PG="$url"; return; fi
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "== installing PostgreSQL"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq postgresql postgresql-client >/dev/null
    fi
    local ver
    ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1 || true)
    if [ -n "$ver" ]; then
        pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || true
        for _ in $(seq 1 30); do pg_ok "$url" && break; sleep 0.5; done
    fi
    if pg_ok "$url"; then export SWITCHBOARD_TEST_PG="$url"; return; fi
    # The installed server wants a password: run our own throw-away cluster with trust auth.
    local bindir dir port=55432
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    dir=$(mktemp -d /tmp/switchboard-pg.XXXXXX)
    chown postgres "$dir" 2>/dev/null || true
    local as=()
    [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
    "${as[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
    "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -l "$dir/log" -w start >/dev/null
    url="postgres://postgres@127.0.0.1:$port/postgres"
    pg_ok "$url" || { echo "PostgreSQL could not be started" >&2; cat "$dir/log" >&2; return 1; }
    export SWITCHBOARD_TEST_PG="$url"
}
