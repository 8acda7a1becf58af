#!/usr/bin/env bash
# Email initial-sync benchmark: Switchboard against mbsync and imapflow+mailparser, each
# pulling the same mailbox of real messages from a private local Dovecot. Prints
# messages/s and peak RSS per contender, the ratios against the targets, and exits
# non-zero only when a contender fails or gets a wrong message count (a MISS is reported,
# not fatal). See README.md.
#
# Environment:
#   SIZES="2500 10000"   mailbox sizes, each with its own mailbox and server, one after the
#                        other (default: $MESSAGES, else 10000)
#   MESSAGES=10000       a single size (used when SIZES is unset)
#   CONTENDERS="mbsync imapflow switchboard"   which to run (default: all three)
#   RUNS=3               timed runs per contender and size (interleaved); the fastest is
#                        reported, with all run times beside it
#   SWITCHBOARD_BIN      default: release/switchboard in cargo's target directory (honours
#                        CARGO_TARGET_DIR), brought up to date first with
#                        `cargo build --release --locked` (BUILD=0: don't)
#   CORPUS               default: <repo>/fixtures/corpus
#   BENCH_DIR            work directory, kept (default: a new temp dir, removed unless KEEP=1)
#   KEEP=1               keep the work directory (mailboxes, configs, logs, databases)
#   SB_PG_URL            Switchboard on PostgreSQL instead of SQLite: an admin URL
#                        (e.g. postgres://postgres@127.0.0.1:5432/postgres); each run gets a
#                        fresh database sbbench_<size>_<run>, dropped at the end unless KEEP=1
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CORPUS=${CORPUS:-$ROOT/fixtures/corpus}
SIZES=${SIZES:-${MESSAGES:-10000}}
CONTENDERS=${CONTENDERS:-mbsync imapflow switchboard}
RUNS=${RUNS:-3}
# Empty: the release build in cargo's target directory (see need_switchboard).
SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-}
KEEP=${KEEP:-0}
BUILD=${BUILD:-1}
IMAP_USER=alice
IMAP_PASS=bench-secret

# Targets from the issue.
TARGET_VS_MBSYNC=2
TARGET_VS_IMAPFLOW=3
TARGET_RSS_MB=150
# "Flat in mailbox size": Switchboard's peak RSS at the largest size at most this many
# percent above the smallest (our reading of "flat"; only checked with two or more SIZES).
FLAT_RSS_PCT=20

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
wants() { [[ " $CONTENDERS " == *" $1 "* ]]; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# ---------------------------------------------------------------------------------------
# Tools

apt_install() {
    is_root || die "missing $*: install the Debian packages ($*) or run as root"
    log "installing $* (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 || {
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
    }
}

need_tools() {
    command -v python3 >/dev/null || die "python3 is required (builds the mailbox)"
    local dovecot_bin
    dovecot_bin=$(command -v dovecot || echo /usr/sbin/dovecot)
    [[ -x $dovecot_bin ]] && command -v doveadm >/dev/null ||
        die "Dovecot is not installed: run scripts/mailservers.sh"
    DOVECOT=$dovecot_bin
    [[ -x /usr/bin/time ]] || apt_install time
    command -v sqlite3 >/dev/null || ! wants switchboard || apt_install sqlite3
    if wants mbsync && ! command -v mbsync >/dev/null; then apt_install isync; fi
    if wants imapflow; then
        command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are required"
        local stamp=$HERE/imapflow/node_modules/.package-lock.json
        if [[ ! -f $stamp || $HERE/imapflow/package-lock.json -nt $stamp ]]; then
            log "npm ci (imapflow, mailparser)"
            (cd "$HERE/imapflow" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        fi
    fi
}

# Sets SB_OK=1 when "$SWITCHBOARD_BIN sync --config FILE --once" can be run.
SB_OK=0
SB_MISSING_REASON=""
need_switchboard() {
    wants switchboard || return 0
    local build=0
    if [[ -z $SWITCHBOARD_BIN ]]; then
        # Where the build below puts it: CARGO_TARGET_DIR is honoured (scripts/target-dir).
        local target_dir
        target_dir=$("$ROOT/scripts/target-dir") ||
            die "cannot locate cargo's target directory (set SWITCHBOARD_BIN)"
        SWITCHBOARD_BIN=$target_dir/release/switchboard
        build=$BUILD
    fi
    if [[ $build == 1 ]]; then
        log "cargo build --release --locked (several minutes from scratch, seconds when up to date)"
        if ! (cd "$ROOT" && cargo build --release --locked) >&2; then
            if [[ -x $SWITCHBOARD_BIN ]]; then
                log "WARNING: the release build failed; measuring the existing, older $SWITCHBOARD_BIN"
            else
                SB_MISSING_REASON="cargo build --release failed"
                return 0
            fi
        fi
    fi
    if [[ ! -x $SWITCHBOARD_BIN ]]; then
        SB_MISSING_REASON="$SWITCHBOARD_BIN does not exist"
    elif ! "$SWITCHBOARD_BIN" sync --help >/dev/null 2>&1; then
        SB_MISSING_REASON="$SWITCHBOARD_BIN has no 'sync' subcommand"
    else
        SB_OK=1
    fi
}

# ---------------------------------------------------------------------------------------
# Work directory, cleanup

if [[ -n ${BENCH_DIR:-} ]]; then
    WORK=$BENCH_DIR
    KEEP=1 # never delete a directory we were given
    mkdir -p "$WORK"
    if [[ -n $(ls -A "$WORK") ]]; then
        # The runs below replace what an earlier benchmark left here; delete it now and let
        # the file system settle first (see KEEP_OUTPUTS_NOTE).
        echo "== $WORK holds an earlier run: removing it, then waiting 35 s" >&2
        rm -rf "${WORK:?}"/*
        sleep 35
    fi
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb-bench-email.XXXXXX")
fi
WORK=$(cd "$WORK" && pwd)
chmod 755 "$WORK"
DOVECOT_PIDFILES=()

stop_dovecot() {
    local f pid
    for f in "${DOVECOT_PIDFILES[@]}"; do
        [[ -f $f ]] || continue
        pid=$(cat "$f")
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    done
    DOVECOT_PIDFILES=()
}

# KEEP_OUTPUTS_NOTE: every run's output (maildirs, databases, blobs, mailboxes) is removed
# only here, at the end, never between runs. Deleting thousands of files right before the
# next contender starts skews that contender: ext4 without a journal (as on our CI VMs)
# skips inodes freed in the last 30 seconds when it allocates new ones, so the next run's
# file and directory creations scan past them (seen as 30 % of Switchboard's profile right
# after mbsync's 10,000-file maildir was deleted). A few hundred MB of disk for the
# duration of the benchmark is the price.
PG_DATABASES=()
cleanup() {
    stop_dovecot
    if [[ $KEEP != 1 ]]; then
        local db
        for db in "${PG_DATABASES[@]}"; do
            psql "$SB_PG_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
        done
    fi
    if [[ $KEEP == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------
# Dovecot

# The account Dovecot runs as: ourselves, or (as root) the `dovecot` user, since its
# login processes refuse to run as root.
if is_root; then
    MAIL_USER=dovecot
else
    MAIL_USER=$(id -un)
fi
MAIL_UID=$(id -u "$MAIL_USER")
MAIL_GID=$(id -g "$MAIL_USER")
MAIL_GROUP=$(id -gn "$MAIL_USER")

as_mail_user() {
    if is_root; then
        setpriv --reuid="$MAIL_UID" --regid="$MAIL_GID" --clear-groups -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The minimal config of connectors/email/tests/servers/dovecot.rs: passwd-file users,
# maildir, plain IMAP only (no TLS, LMTP or auth listener: not needed here).
dovecot_conf() { # DIR PORT
    local d=$1 port=$2
    cat <<EOF
# Generated by bench/email-sync/run.sh.
base_dir = $d/run
state_dir = $d/state
instance_name = sbbench$port
protocols = imap
listen = 127.0.0.1
log_path = $d/dovecot.log
default_internal_user = $MAIL_USER
default_internal_group = $MAIL_GROUP
default_login_user = $MAIL_USER
first_valid_uid = $MAIL_UID
last_valid_uid = $MAIL_UID
first_valid_gid = $MAIL_GID
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login
auth_username_format = %Ln
passdb {
  driver = passwd-file
  args = scheme=PLAIN $d/users
}
userdb {
  driver = static
  args = uid=$MAIL_UID gid=$MAIL_GID home=$d/mail/%n
}
mail_location = maildir:~/Maildir
mail_fsync = never
mail_max_userip_connections = 50
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
service auth {
  chroot =
}
service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF
}

greeting_ready() ( # PORT (a subshell: the exec redirections stay in it)
    exec 2>/dev/null
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    IFS= read -r -t 5 line <&3 || line=""
    [[ $line == *ready* ]]
)

doveadm_() { # DIR args...
    local d=$1
    shift
    as_mail_user env HOME="$d" doveadm -c "$d/dovecot.conf" "$@"
}

# Starts Dovecot on DIR (holding users and mail/) on a free port; sets PORT.
start_dovecot() { # DIR
    local d=$1 attempt
    for attempt in 1 2 3; do
        PORT=$(free_port)
        dovecot_conf "$d" "$PORT" >"$d/dovecot.conf"
        rm -f "$d/dovecot.log"
        mkdir -p "$d/run" "$d/state"
        is_root && chown -R "$MAIL_UID:$MAIL_GID" "$d/run" "$d/state" "$d/dovecot.conf"
        as_mail_user "$DOVECOT" -c "$d/dovecot.conf" >"$d/stderr.log" 2>&1 ||
            die "Dovecot did not start: $(cat "$d/stderr.log" "$d/dovecot.log" 2>/dev/null)"
        DOVECOT_PIDFILES+=("$d/run/master.pid")
        for _ in $(seq 200); do
            greeting_ready "$PORT" && return 0
            sleep 0.05
        done
        if grep -q "Address already in use" "$d/dovecot.log" "$d/stderr.log" 2>/dev/null; then
            stop_dovecot
            continue
        fi
        break
    done
    die "Dovecot did not answer on port $PORT: $(cat "$d/stderr.log" "$d/dovecot.log" 2>/dev/null)"
}

# ---------------------------------------------------------------------------------------
# Measuring

# measure DIR NAME cmd...: runs cmd with stdout/stderr to DIR/NAME.{out,err}; sets SECS
# (wall time, from before exec to exit), RSS_KB (peak resident set, GNU time %M) and CPU
# (user + system seconds); returns the command's status.
measure() {
    local d=$1 name=$2 start end status=0
    shift 2
    start=$(date +%s%N)
    /usr/bin/time -f '%M %U %S' -o "$d/$name.time" "$@" >"$d/$name.out" 2>"$d/$name.err" || status=$?
    end=$(date +%s%N)
    SECS=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    local last
    last=$(tail -n 1 "$d/$name.time")
    RSS_KB=${last%% *}
    [[ $RSS_KB =~ ^[0-9]+$ ]] || RSS_KB=0
    CPU=$(awk '{ printf "%.2f", $2 + $3 }' <<<"$last")
    return $status
}

FAILED=0
fail() { printf 'FAIL: %s\n' "$*" >&2; FAILED=1; }

# Results: RESULT[size:contender] = "count secs rss_kb cpu" (the fastest run's time and
# CPU, the largest RSS of all runs); ALL_SECS: every run's time.
declare -A RESULT ALL_SECS
record() { # SIZE NAME COUNT SECS RSS_KB CPU
    local key=$1:$2 prev psecs prss pcpu
    ALL_SECS[$key]="${ALL_SECS[$key]:+${ALL_SECS[$key]} }$(printf '%.1f' "$4")"
    prev=${RESULT[$key]:-}
    if [[ -n $prev ]]; then
        read -r _ psecs prss pcpu <<<"$prev"
        if awk -v a="$psecs" -v b="$4" 'BEGIN { exit !(a < b) }'; then
            RESULT[$key]="$3 $psecs $(( prss > $5 ? prss : $5 )) $pcpu"
            return
        fi
        RESULT[$key]="$3 $4 $(( prss > $5 ? prss : $5 )) $6"
    else
        RESULT[$key]="$3 $4 $5 $6"
    fi
}

# ---------------------------------------------------------------------------------------
# Contenders. Each: run_X SIZE DIR RUN; checks its own count; records or fails.

run_mbsync() {
    local n=$1 d=$2/mbsync-$3
    rm -rf "$d" && mkdir -p "$d/maildir"
    # Default FSync (yes) on purpose: durable like the others should be.
    cat >"$d/mbsyncrc" <<EOF
IMAPAccount bench
Host 127.0.0.1
Port $PORT
User $IMAP_USER
Pass $IMAP_PASS
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path $d/maildir/
Inbox $d/maildir/INBOX

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Sync Pull
Create Near
SyncState *
EOF
    if ! measure "$d" run env HOME="$d" mbsync -c "$d/mbsyncrc" -q bench; then
        fail "mbsync exited non-zero: $(tail -n 5 "$d/run.err")"
        return
    fi
    local got
    got=$(find "$d/maildir/INBOX/cur" "$d/maildir/INBOX/new" -type f 2>/dev/null | wc -l)
    [[ $got -eq $n ]] || { fail "mbsync: $got messages in the maildir, expected $n"; return; }
    record "$n" mbsync "$got" "$SECS" "$RSS_KB" "$CPU"
    # The maildir stays until the end (see KEEP_OUTPUTS_NOTE).
}

run_imapflow() {
    local n=$1 d=$2/imapflow-$3
    rm -rf "$d" && mkdir -p "$d"
    if ! measure "$d" run env IMAP_PORT="$PORT" IMAP_USER="$IMAP_USER" IMAP_PASS="$IMAP_PASS" \
        node "$HERE/imapflow/fetch.mjs"; then
        fail "imapflow+mailparser exited non-zero: $(tail -n 5 "$d/run.err")"
        return
    fi
    local got
    got=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["messages"])' <"$d/run.out" 2>/dev/null || echo "?")
    [[ $got == "$n" ]] || { fail "imapflow+mailparser: $got messages, expected $n ($(cat "$d/run.out"))"; return; }
    record "$n" imapflow "$got" "$SECS" "$RSS_KB" "$CPU"
}

# The Switchboard configuration (the one place to adjust if its format changes).
switchboard_config() { # DIR DATABASE_URL
    local d=$1
    cat <<EOF
[database]
url = "$2"
[blobs]
path = "$d/blobs"
[[tenants]]
id = "bench"
[[channels]]
id = "bench-mail"
tenant = "bench"
type = "email"
address = "alice@example.test"
imap = { host = "127.0.0.1", port = $PORT, security = "plain", username = "$IMAP_USER", password = "$IMAP_PASS", folders = ["INBOX"], idle = false }
smtp = { host = "127.0.0.1", port = 25, security = "plain" }
EOF
}
# What must equal the mailbox size after the sync.
SB_COUNT_SQL=${SB_COUNT_SQL:-select count(*) from messages}

run_switchboard() {
    local n=$1 d=$2/switchboard-$3
    rm -rf "$d" && mkdir -p "$d"
    local url="sqlite://$d/bench.db" pg_db=""
    if [[ -n ${SB_PG_URL:-} ]]; then
        pg_db="sbbench_${n}_$3"
        psql "$SB_PG_URL" -qc "DROP DATABASE IF EXISTS $pg_db" -c "CREATE DATABASE $pg_db" >/dev/null ||
            { fail "switchboard: cannot create database $pg_db at $SB_PG_URL"; return; }
        url="${SB_PG_URL%/*}/$pg_db"
        PG_DATABASES+=("$pg_db")
    fi
    switchboard_config "$d" "$url" >"$d/config.toml"
    # Untimed: configuration check and schema creation are not part of the sync.
    if ! "$SWITCHBOARD_BIN" check-config --config "$d/config.toml" >"$d/check.out" 2>&1; then
        fail "switchboard check-config rejected the generated configuration ($d/config.toml):
$(cat "$d/check.out")"
        return
    fi
    if ! "$SWITCHBOARD_BIN" migrate --config "$d/config.toml" >"$d/migrate.out" 2>&1; then
        fail "switchboard migrate failed: $(tail -n 5 "$d/migrate.out")"
        return
    fi
    if ! measure "$d" run "$SWITCHBOARD_BIN" sync --config "$d/config.toml" --once; then
        fail "switchboard sync exited non-zero: $(tail -n 10 "$d/run.err")"
        return
    fi
    local got
    sb_sql() { # QUERY
        if [[ -n $pg_db ]]; then psql "$url" -tAc "$1"; else sqlite3 "$d/bench.db" "$1"; fi
    }
    got=$(sb_sql "$SB_COUNT_SQL" 2>&1) || { fail "switchboard: cannot count: $got"; return; }
    [[ $got == "$n" ]] || { fail "switchboard: '$SB_COUNT_SQL' gives $got, expected $n (KEEP=1 keeps $d)"; return; }
    SB_CONVERSATIONS[$n]=$(sb_sql 'select count(*) from conversations' 2>/dev/null || echo "?")
    record "$n" switchboard "$got" "$SECS" "$RSS_KB" "$CPU"
}
declare -A SB_CONVERSATIONS

# ---------------------------------------------------------------------------------------
# One size: build the mailbox, start Dovecot, index, prime, run everyone.

declare -A MAILBOX_INFO
bench_size() { # N
    local n=$1 d=$WORK/n$1
    local dv=$d/dovecot
    rm -rf "$d" && mkdir -p "$dv/mail/$IMAP_USER/Maildir"
    chmod 755 "$d"
    log "$n messages: building the mailbox from $CORPUS"
    MAILBOX_INFO[$n]=$(python3 "$HERE/build_mailbox.py" "$CORPUS" "$dv/mail/$IMAP_USER/Maildir" "$n") ||
        die "building the mailbox failed"
    printf '%s:{PLAIN}%s::::::\n' "$IMAP_USER" "$IMAP_PASS" >"$dv/users"
    is_root && chown -R "$MAIL_UID:$MAIL_GID" "$dv"
    start_dovecot "$dv"
    log "$n messages: Dovecot on 127.0.0.1:$PORT; indexing and priming the page cache (untimed)"
    local status
    status=$(doveadm_ "$dv" -f flow mailbox status -u "$IMAP_USER" "messages uidnext" INBOX) ||
        die "doveadm mailbox status failed: $status"
    [[ $status == *"messages=$n "* ]] || die "Dovecot sees '$status', expected messages=$n"
    # Fill Dovecot's cache with what IMAP clients fetch, and the page cache with the mail.
    doveadm_ "$dv" fetch -u "$IMAP_USER" "uid flags date.received size.physical size.virtual text" \
        mailbox INBOX >/dev/null || die "doveadm fetch failed"
    local run name
    for run in $(seq "$RUNS"); do
        for name in mbsync imapflow switchboard; do
            wants "$name" || continue
            [[ $name != switchboard || $SB_OK == 1 ]] || continue
            log "$n messages: $name (run $run/$RUNS)"
            "run_$name" "$n" "$d" "$run"
        done
    done
    stop_dovecot
}

# ---------------------------------------------------------------------------------------
# Report

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }'; }

label() {
    case $1 in
        mbsync) echo "mbsync (isync $(mbsync --version 2>/dev/null | awk '{ print $2 }'))" ;;
        imapflow)
            local v1 v2
            v1=$(node -p "require('$HERE/imapflow/node_modules/imapflow/package.json').version" 2>/dev/null || echo "?")
            v2=$(node -p "require('$HERE/imapflow/node_modules/mailparser/package.json').version" 2>/dev/null || echo "?")
            echo "imapflow $v1 + mailparser $v2"
            ;;
        switchboard) echo "switchboard" ;;
    esac
}

verdict() { # VALUE OP TARGET -> PASS/MISS
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
        ok = (op == ">=") ? (v >= t) : (op == "<=") ? (v <= t) : (v < t)
        print (ok ? "PASS" : "MISS") }'
}

report() {
    local n name row count secs rss cpu
    echo
    echo "Email initial sync: same mailbox, private Dovecot on loopback, $(nproc) CPUs, best of $RUNS run(s)"
    echo "Load average at start: $LOAD_AT_START (anything else using the CPUs or disk skews every number)"
    if [[ $SB_OK == 1 ]]; then
        echo "Switchboard: $SWITCHBOARD_BIN (built $(date -r "$SWITCHBOARD_BIN" '+%F %T')), storing in $([[ -n ${SB_PG_URL:-} ]] && echo "PostgreSQL (a fresh database per run)" || echo SQLite)"
    fi
    for n in $SIZES; do
        echo
        echo "Mailbox: $n messages $(python3 -c '
import json, sys
i = json.loads(sys.argv[1])
print("(%.1f MB, %d corpus messages x %d rounds, %d with a generated Message-ID)" % (
    i["bytes"] / 1e6, i["corpus_messages"], i["rounds"], i["generated_ids"]))' "${MAILBOX_INFO[$n]}")"
        printf '  %-36s %9s %9s %11s %13s %7s   %s\n' contender messages seconds "messages/s" \
            "peak RSS MB" "CPU s" "all runs (s)"
        for name in mbsync imapflow switchboard; do
            wants "$name" || continue
            row=${RESULT[$n:$name]:-}
            if [[ -z $row ]]; then
                if [[ $name == switchboard && $SB_OK != 1 ]]; then
                    printf '  %-36s %s\n' "$(label $name)" "switchboard sync not available yet ($SB_MISSING_REASON)"
                else
                    printf '  %-36s %s\n' "$(label $name)" "FAILED"
                fi
                continue
            fi
            read -r count secs rss cpu <<<"$row"
            printf '  %-36s %9s %9.2f %11s %13s %7s   %s\n' "$(label $name)" "$count" "$secs" \
                "$(rate "$count" "$secs")" "$(mb "$rss")" "$cpu" "${ALL_SECS[$n:$name]}"
        done
        [[ -n ${SB_CONVERSATIONS[$n]:-} ]] && echo "  (switchboard threaded them into ${SB_CONVERSATIONS[$n]} conversations)"
        local sb=${RESULT[$n:switchboard]:-}
        [[ -n $sb ]] || continue
        read -r count secs rss _ <<<"$sb"
        local sb_rate peer peer_rate ratio target
        sb_rate=$(rate "$count" "$secs")
        for peer in mbsync imapflow; do
            [[ -n ${RESULT[$n:$peer]:-} ]] || continue
            read -r pc ps _ _ <<<"${RESULT[$n:$peer]}"
            peer_rate=$(rate "$pc" "$ps")
            ratio=$(awk -v a="$sb_rate" -v b="$peer_rate" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
            if [[ $peer == mbsync ]]; then target=$TARGET_VS_MBSYNC; else target=$TARGET_VS_IMAPFLOW; fi
            printf '  %-36s %6sx   target >= %sx   %s\n' \
                "switchboard/$([[ $peer == mbsync ]] && echo mbsync || echo imapflow+mailparser)" \
                "$ratio" "$target" "$(verdict "$ratio" ">=" "$target")"
        done
        printf '  %-36s %6s MB  target <  %s MB  %s\n' "switchboard peak RSS" "$(mb "$rss")" \
            "$TARGET_RSS_MB" "$(verdict "$(mb "$rss")" "<" "$TARGET_RSS_MB")"
    done
    # Flat in mailbox size: Switchboard's RSS across sizes.
    local sizes_with_sb=() first last
    for n in $SIZES; do [[ -n ${RESULT[$n:switchboard]:-} ]] && sizes_with_sb+=("$n"); done
    if [[ ${#sizes_with_sb[@]} -ge 2 ]]; then
        echo
        echo "Switchboard peak RSS by mailbox size:"
        for n in "${sizes_with_sb[@]}"; do
            read -r _ _ rss _ <<<"${RESULT[$n:switchboard]}"
            printf '  %8s messages  %8s MB\n' "$n" "$(mb "$rss")"
        done
        first=$(printf '%s\n' "${sizes_with_sb[@]}" | sort -n | head -n 1)
        last=$(printf '%s\n' "${sizes_with_sb[@]}" | sort -n | tail -n 1)
        read -r _ _ r1 _ <<<"${RESULT[$first:switchboard]}"
        read -r _ _ r2 _ <<<"${RESULT[$last:switchboard]}"
        local growth
        growth=$(awk -v a="$r1" -v b="$r2" 'BEGIN { printf "%.1f", (a > 0 ? (b - a) * 100 / a : 0) }')
        printf '  %-36s %6s%%   target <= %s%%   %s\n' "growth $first -> $last messages" "$growth" \
            "$FLAT_RSS_PCT" "$(verdict "$growth" "<=" "$FLAT_RSS_PCT")"
    fi
}

# ---------------------------------------------------------------------------------------

[[ -d $CORPUS ]] || die "no corpus at $CORPUS (set CORPUS)"
CORPUS=$(cd "$CORPUS" && pwd)
for n in $SIZES; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "bad size '$n' in SIZES"; done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "bad RUNS '$RUNS'"
need_tools
need_switchboard
if wants switchboard && [[ $SB_OK != 1 ]]; then
    log "switchboard sync not available yet ($SB_MISSING_REASON); running the peers only"
fi
LOAD_AT_START=$(cut -d ' ' -f 1-3 /proc/loadavg)
if awk -v l="${LOAD_AT_START%% *}" 'BEGIN { exit !(l > 0.5) }'; then
    log "warning: load average $LOAD_AT_START: the machine is not idle, numbers will be noisy"
fi
for n in $SIZES; do bench_size "$n"; done
report

if [[ $FAILED != 0 ]]; then
    echo; echo "A contender failed or got a wrong count (see FAIL above)."; exit 1
fi
if wants switchboard && [[ $SB_OK != 1 ]]; then
    echo; echo "switchboard sync not available yet: $SB_MISSING_REASON"; exit 2
fi
exit 0
