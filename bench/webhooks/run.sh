#!/usr/bin/env bash
# Webhook ingest benchmark: signed Twilio inbound-SMS webhooks and WhatsApp Cloud API
# batches fired at a running Switchboard daemon by bench/webhooks/loadgen (closed loop,
# then open loop at fixed rates), each run on a fresh database and followed by the
# exactly-once check; then the store ceiling (bare durable one-row inserts with the same
# database settings) and a table with ratios and targets. Exits non-zero when a run fails
# or a check finds a lost, doubled or unknown message (a MISS against a target is reported,
# not fatal). See README.md.
#
# Environment:
#   BACKENDS="sqlite postgres"  which stores (default: both)
#   PG_URL               an admin URL of the PostgreSQL server (default
#                        postgres://postgres@127.0.0.1:5432/postgres); every run gets a fresh
#                        database sbbench_wh_<pid>_<run>, dropped at the end unless KEEP=1
#   RATES="1000 2000"    open-loop rates, messages/s (empty: closed loop only)
#   CLOSED=1             run the closed loop (0: don't)
#   CONNECTIONS=64       closed-loop connections, and the ceiling's concurrent workers
#   DURATION=20          seconds measured per run (after WARMUP=3 seconds of load)
#   CEILING=1            measure the store ceiling (0: don't)
#   LOADGEN_CPU          the CPU the generator is pinned to with taskset (default: the
#                        last one; "none": not pinned)
#   DAEMON_CPUS          pin the daemon too (taskset -c list; default: not pinned)
#   SWITCHBOARD_BIN      default: release/switchboard in cargo's target directory (honours
#                        CARGO_TARGET_DIR), built first with `cargo build --release --locked`
#   LOADGEN_BIN          default: release/webhooks-loadgen there, built the same way
#   LOADGEN_ARGS         extra `webhooks-loadgen run` flags, e.g. "--wa-share 0 --dup-share 0.1"
#   BENCH_DIR            work directory, kept (default: a new temp dir, removed unless KEEP=1)
#   KEEP=1               keep the work directory (configs, logs, databases, results)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BACKENDS=${BACKENDS:-sqlite postgres}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
RATES=${RATES-1000 2000}
CLOSED=${CLOSED:-1}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
CEILING=${CEILING:-1}
KEEP=${KEEP:-0}
SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-}
LOADGEN_BIN=${LOADGEN_BIN:-}
LOADGEN_ARGS=${LOADGEN_ARGS:-}
DAEMON_CPUS=${DAEMON_CPUS:-}
# Switchboard's database.max_connections (the default): the PostgreSQL ceiling's pool.
DB_POOL=8

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

for tool in curl python3; do command -v $tool >/dev/null || die "$tool is required"; done
[[ " $BACKENDS " != *" postgres "* ]] || command -v psql >/dev/null || die "psql is required for PostgreSQL"

# ---------------------------------------------------------------------------------------
# Binaries

if [[ -z $SWITCHBOARD_BIN || -z $LOADGEN_BIN ]]; then
    TARGET_DIR=$("$ROOT/scripts/target-dir") || die "cannot locate cargo's target directory"
    build=(cargo build --release --locked)
    [[ -n $SWITCHBOARD_BIN ]] || build+=(-p switchboard)
    [[ -n $LOADGEN_BIN ]] || build+=(-p switchboard-bench-webhooks)
    log "${build[*]}"
    (cd "$ROOT" && "${build[@]}") >&2 || die "the release build failed"
    SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-$TARGET_DIR/release/switchboard}
    LOADGEN_BIN=${LOADGEN_BIN:-$TARGET_DIR/release/webhooks-loadgen}
fi
[[ -x $SWITCHBOARD_BIN ]] || die "$SWITCHBOARD_BIN is not an executable"
[[ -x $LOADGEN_BIN ]] || die "$LOADGEN_BIN is not an executable"

# The generator on one CPU, so it does not take the daemon's CPU time in unclear ways.
PIN=()
CPUS=$(nproc)
LOADGEN_CPU=${LOADGEN_CPU:-$((CPUS - 1))}
if [[ $LOADGEN_CPU != none ]] && command -v taskset >/dev/null && [[ $CPUS -gt 1 ]]; then
    PIN=(taskset -c "$LOADGEN_CPU")
    PIN_NOTE="generator pinned to CPU $LOADGEN_CPU (taskset)"
else
    PIN_NOTE="generator not pinned"
fi
DAEMON_PIN=()
DAEMON_NOTE="daemon not pinned"
if [[ -n $DAEMON_CPUS ]]; then
    DAEMON_PIN=(taskset -c "$DAEMON_CPUS")
    DAEMON_NOTE="daemon pinned to CPUs $DAEMON_CPUS"
fi

# ---------------------------------------------------------------------------------------
# Work directory, cleanup

if [[ -n ${BENCH_DIR:-} ]]; then
    WORK=$BENCH_DIR
    KEEP=1
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb-bench-webhooks.XXXXXX")
fi
WORK=$(cd "$WORK" && pwd)
RESULTS=$WORK/results
rm -rf "$RESULTS" && mkdir -p "$RESULTS"

DAEMON_PID=""
PG_DATABASES=()
stop_daemon() {
    [[ -n $DAEMON_PID ]] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
}
cleanup() {
    stop_daemon
    if [[ $KEEP != 1 ]]; then
        local db
        for db in "${PG_DATABASES[@]}"; do
            psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
        done
        rm -rf "$WORK"
    else
        log "kept $WORK (and PostgreSQL databases: ${PG_DATABASES[*]:-none})"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Secrets reach the daemon through ${ENV} placeholders and the generator through the same
# variables; random per benchmark run.
secret() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }
export BENCH_TWILIO_AUTH_TOKEN BENCH_WA_APP_SECRET BENCH_WA_ACCESS_TOKEN BENCH_WA_VERIFY_TOKEN
BENCH_TWILIO_AUTH_TOKEN=$(secret)
BENCH_WA_APP_SECRET=$(secret)
BENCH_WA_ACCESS_TOKEN=$(secret)
BENCH_WA_VERIFY_TOKEN=$(secret)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A fresh database for one run (a new file in WORK/NAME, or a new PostgreSQL database):
# sets FRESH_URL (no command substitution: PG_DATABASES must keep the name for cleanup).
fresh_database() { # BACKEND NAME FILE
    if [[ $1 == sqlite ]]; then
        mkdir -p "$WORK/$2"
        FRESH_URL="sqlite://$WORK/$2/$3"
    else
        local db="sbbench_wh_$$_${2//-/_}"
        psql "$PG_URL" -qc "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" \
            -c "CREATE DATABASE $db" >/dev/null ||
            die "cannot create database $db at $PG_URL"
        PG_DATABASES+=("$db")
        FRESH_URL="${PG_URL%/*}/$db"
    fi
}

# The configuration: one tenant, one Twilio and one WhatsApp channel. The providers' APIs
# point at a closed local port (nothing is sent in this benchmark; the start-up health
# check fails at once instead of reaching the internet), and health checks run only then.
switchboard_config() { # DIR PORT DATABASE_URL
    cat <<EOF
[server]
listen = "127.0.0.1:$2"
public_url = "http://127.0.0.1:$2"
health_check_secs = 0

[database]
url = "$3"

[blobs]
path = "$1/blobs"

[[tenants]]
id = "bench"

[[channels]]
id = "bench-sms"
tenant = "bench"
type = "twilio"
account_sid = "AC00000000000000000000000000000001"
auth_token = "\${BENCH_TWILIO_AUTH_TOKEN}"
from = "+15005550006"
api_base = "http://127.0.0.1:9"

[[channels]]
id = "bench-wa"
tenant = "bench"
type = "whatsapp"
phone_number_id = "106540352242922"
access_token = "\${BENCH_WA_ACCESS_TOKEN}"
app_secret = "\${BENCH_WA_APP_SECRET}"
verify_token = "\${BENCH_WA_VERIFY_TOKEN}"
graph_base = "http://127.0.0.1:9"
EOF
}

# Starts the daemon on a fresh database and a free port: sets DAEMON_PID, PORT, DB_URL,
# and BENCH_SSE_TOKEN (an agent token of the tenant, for the live stream).
start_daemon() { # BACKEND NAME
    local d=$WORK/$1-$2 attempt
    mkdir -p "$d"
    fresh_database "$1" "$1-$2" switchboard.db
    DB_URL=$FRESH_URL
    for attempt in 1 2 3; do
        PORT=$(free_port)
        switchboard_config "$d" "$PORT" "$DB_URL" >"$d/config.toml"
        "$SWITCHBOARD_BIN" --config "$d/config.toml" check-config >"$d/check.out" 2>&1 ||
            die "check-config rejected $d/config.toml: $(cat "$d/check.out")"
        "$SWITCHBOARD_BIN" --config "$d/config.toml" migrate >"$d/migrate.out" 2>&1 ||
            die "migrate failed: $(tail -n 5 "$d/migrate.out")"
        BENCH_SSE_TOKEN=$("$SWITCHBOARD_BIN" --config "$d/config.toml" token create \
            --tenant bench --role agent --name bench 2>"$d/token.err") ||
            die "token create failed: $(cat "$d/token.err")"
        export BENCH_SSE_TOKEN
        "${DAEMON_PIN[@]}" "$SWITCHBOARD_BIN" --config "$d/config.toml" serve >"$d/daemon.log" 2>&1 &
        DAEMON_PID=$!
        for _ in $(seq 300); do
            curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0
            kill -0 "$DAEMON_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop_daemon
        grep -q "in use" "$d/daemon.log" && continue
        die "the daemon did not become ready: $(tail -n 20 "$d/daemon.log")"
    done
    die "no free port for the daemon after 3 attempts"
}

FAILED=0
# One measured run: a fresh daemon and database, the load, the check.
bench_run() { # BACKEND NAME loadgen-args...
    local backend=$1 name=$2
    shift 2
    start_daemon "$backend" "$name"
    log "$backend $name: daemon pid $DAEMON_PID on port $PORT; load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
    # shellcheck disable=SC2086 # LOADGEN_ARGS is a list of flags
    if ! "${PIN[@]}" "$LOADGEN_BIN" run --url "http://127.0.0.1:$PORT" --database-url "$DB_URL" \
        --pid "$DAEMON_PID" --label "$backend-$name" --warmup "$WARMUP" --duration "$DURATION" \
        --out "$RESULTS/$backend-$name.json" "$@" $LOADGEN_ARGS; then
        FAILED=1
        log "$backend $name FAILED (daemon log: $WORK/$backend-$name/daemon.log; KEEP=1 keeps it)"
    fi
    stop_daemon
}

# The store ceiling: bare durable inserts through a fresh database of the backend, run
# where the daemon runs (its CPUs, not the generator's), right before and right after the
# closed loop so the ratio compares measurements minutes apart at most.
ceiling() { # BACKEND WHEN
    fresh_database "$1" "$1-ceiling-$2" ceiling.db
    log "$1 store ceiling ($2): $CONNECTIONS workers; load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
    "${DAEMON_PIN[@]}" "$LOADGEN_BIN" ceiling --database-url "$FRESH_URL" --workers "$CONNECTIONS" \
        --pool "$DB_POOL" --warmup "$WARMUP" --duration "$DURATION" \
        --label "$1-ceiling-$2" --out "$RESULTS/$1-ceiling-$2.json" ||
        { FAILED=1; log "$1 ceiling FAILED"; }
}

log "work directory $WORK; $PIN_NOTE; $DAEMON_NOTE; $(nproc) CPUs"
LOAD_AT_START=$(cut -d ' ' -f 1-3 /proc/loadavg)
if awk -v l="${LOAD_AT_START%% *}" 'BEGIN { exit !(l > 0.5) }'; then
    log "warning: load average $LOAD_AT_START: the machine is not idle, figures will be noisy"
fi
for backend in $BACKENDS; do
    case $backend in sqlite | postgres) ;; *) die "unknown backend '$backend'" ;; esac
    [[ $CEILING != 1 ]] || ceiling "$backend" before
    if [[ $CLOSED == 1 ]]; then
        bench_run "$backend" "closed" --mode closed --connections "$CONNECTIONS" --no-sse
    fi
    [[ $CEILING != 1 ]] || ceiling "$backend" after
    for rate in $RATES; do
        bench_run "$backend" "open$rate" --mode open --rate "$rate"
    done
done

echo
echo "Webhook ingest: $(nproc) CPUs, $PIN_NOTE, $DAEMON_NOTE; ${DURATION}s measured after ${WARMUP}s warm-up per run"
echo "Load average at start: $LOAD_AT_START, at the end: $(cut -d ' ' -f 1-3 /proc/loadavg) (anything else using the CPUs or the disk skews every figure)"
echo "Switchboard: $SWITCHBOARD_BIN (built $(date -r "$SWITCHBOARD_BIN" '+%F %T'))"
shopt -s nullglob
results=("$RESULTS"/*.json)
[[ ${#results[@]} -gt 0 ]] || die "no results"
"$LOADGEN_BIN" table "${results[@]}" || FAILED=1
if [[ $FAILED != 0 ]]; then
    echo
    echo "FAILED: a run or an exactly-once check failed (see above)."
    exit 1
fi
