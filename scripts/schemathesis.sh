#!/usr/bin/env bash
# Property-based API testing with Schemathesis against the real daemon and its own
# OpenAPI document (GET /api/v1/openapi.json).
#
# Builds the daemon, starts it on a free port with a throw-away SQLite database (tenant
# `acme`, one Twilio channel whose API is a closed port), creates an admin token, seeds one
# inbound SMS through a signed Twilio webhook, validates the served document with
# openapi-spec-validator (OpenAPI 3.1), then lets Schemathesis generate requests for
# every operation except the endless streams (/api/v1/events, /api/v1/ws) and runs every
# Schemathesis check but two: no 5xx, every response conforms to the document (status code,
# content type, headers, body schema), auth is not ignored, undocumented methods are 405,
# deleted/created resources behave. Left out: `positive_data_acceptance` and
# `negative_data_rejection`, which report answers the API gives on purpose and documents
# (an empty query value counts as absent; opaque cursors, channel ids and the connector's
# rules cannot be expressed as schema constraints, so schema-valid values may still be a
# documented 400/422). Exits non-zero on any failure; always stops the daemon.
#
# Environment: SCHEMATHESIS_MAX_EXAMPLES (default 40 per operation), SCHEMATHESIS_MAX_TIME
# (default 120 s for the test run), SCHEMATHESIS_SEED (optional), SCHEMATHESIS_CHECKS and
# SCHEMATHESIS_EXCLUDE_CHECKS (override the selection above), SCHEMATHESIS_DATABASE_URL
# (default: a fresh SQLite file; e.g. an empty PostgreSQL database instead).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.9.0
# Beside the build, wherever CARGO_TARGET_DIR puts it.
TARGET_DIR=$(scripts/target-dir)
VENV=$TARGET_DIR/schemathesis-venv
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-40}
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-120}
CHECKS=${SCHEMATHESIS_CHECKS:-all}
EXCLUDE_CHECKS=${SCHEMATHESIS_EXCLUDE_CHECKS-positive_data_acceptance,negative_data_rejection}

echo "== schemathesis: setting up ${SCHEMATHESIS_VERSION}"
PINS="schemathesis==${SCHEMATHESIS_VERSION} openapi-spec-validator==${VALIDATOR_VERSION}"
if [[ "$(cat "$VENV/.pins" 2>/dev/null)" != "$PINS" ]]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS
    echo "$PINS" >"$VENV/.pins"
fi

echo "== schemathesis: building the daemon"
cargo build --locked --bin switchboard
BIN=$TARGET_DIR/debug/switchboard

WORK=$(mktemp -d)
DAEMON_PID=
cleanup() {
    if [[ -n "$DAEMON_PID" ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

export SCHEMATHESIS_TWILIO_TOKEN="schemathesis-$RANDOM$RANDOM"
CONFIG="$WORK/switchboard.toml"
cat >"$CONFIG" <<EOF
[server]
listen = "127.0.0.1:0"
max_body_bytes = 65536

[database]
url = "${SCHEMATHESIS_DATABASE_URL:-sqlite://$WORK/switchboard.db}"

[blobs]
path = "$WORK/blobs"

[outbox]
max_attempts = 2
base_delay_ms = 50
max_delay_ms = 200

# The fuzzer sends thousands of requests a minute with one admin token: unlimited, so they
# reach the handlers instead of the rate limit (tests/e2e_access.rs covers the 429).
[api.rate_limits]
admin_per_minute = 0

[[tenants]]
id = "acme"

[[channels]]
id = "acme-sms"
tenant = "acme"
type = "twilio"
account_sid = "AC00000000000000000000000000000001"
auth_token = "\${SCHEMATHESIS_TWILIO_TOKEN}"
from = "+15005550006"
# A closed port: replies are queued and fail to send, which is all the API needs.
api_base = "http://127.0.0.1:9"
timeout_secs = 2
EOF

SB=("$BIN" --config "$CONFIG")
"${SB[@]}" check-config >/dev/null
TOKEN=$("${SB[@]}" token create --tenant acme --role admin --name schemathesis 2>/dev/null)

echo "== schemathesis: starting the daemon"
"${SB[@]}" serve >"$WORK/stdout" 2>"$WORK/stderr" &
DAEMON_PID=$!
BASE=
for _ in $(seq 1 300); do
    BASE=$(sed -n 's/^switchboard listening on \(http:\/\/[^ ]*\)$/\1/p' "$WORK/stdout" | head -n1)
    [[ -n "$BASE" ]] && break
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        echo "the daemon exited:" >&2
        cat "$WORK/stderr" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z "$BASE" ]]; then
    echo "the daemon did not start within 30 s:" >&2
    cat "$WORK/stderr" >&2
    exit 1
fi
echo "daemon at $BASE"

# One inbound SMS, so lists and conversation ids are not all empty. The signature is over
# the URL the daemon is reached at.
BODY='MessageSid=SM11111111111111111111111111111111&AccountSid=AC00000000000000000000000000000001&From=%2B14155550123&To=%2B15005550006&Body=Hi%2C+where+is+my+order%3F&NumMedia=0'
SIG=$(SWITCHBOARD_SERVER__PUBLIC_URL="$BASE" "${SB[@]}" twilio-sign --channel acme-sms --data "$BODY")
python3 - "$BASE/webhooks/acme-sms/messages" "$SIG" "$BODY" <<'PY'
import sys, urllib.request
url, sig, body = sys.argv[1:]
req = urllib.request.Request(url, data=body.encode(), method="POST", headers={
    "X-Twilio-Signature": sig,
    "Content-Type": "application/x-www-form-urlencoded",
})
with urllib.request.urlopen(req, timeout=10) as r:
    assert r.status == 200, r.status
PY

echo "== schemathesis: validating the document as OpenAPI 3.1"
python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=10).read())' \
    "$BASE/api/v1/openapi.json" >"$WORK/openapi.json"
"$VENV/bin/openapi-spec-validator" --schema 3.1 "$WORK/openapi.json"

echo "== schemathesis: running (at most ${MAX_EXAMPLES} examples per operation, ${MAX_TIME} s)"
EXTRA_ARGS=()
if [[ -n "${SCHEMATHESIS_SEED:-}" ]]; then
    EXTRA_ARGS+=(--seed "$SCHEMATHESIS_SEED")
fi
if [[ -n "$EXCLUDE_CHECKS" ]]; then
    EXTRA_ARGS+=(--exclude-checks "$EXCLUDE_CHECKS")
fi
# One worker: with several, Hypothesis parses lambda sources from threads at once, which
# CPython 3.11 before 3.11.8 can fail with "AST constructor recursion depth mismatch".
START=$SECONDS
status=0
timeout --kill-after=10 $((MAX_TIME + 120)) \
    "$VENV/bin/schemathesis" run "$BASE/api/v1/openapi.json" \
    --header "Authorization: Bearer $TOKEN" \
    --exclude-path /api/v1/events \
    --exclude-path /api/v1/ws \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --request-timeout 10 \
    --workers 1 \
    --report junit --report-dir "$WORK/report" \
    "${EXTRA_ARGS[@]}" || status=$?
echo "schemathesis finished in $((SECONDS - START)) s with status $status"
if [[ $status -ne 0 ]]; then
    echo "--- daemon log (last 50 lines)" >&2
    tail -n 50 "$WORK/stderr" >&2
fi
exit "$status"
