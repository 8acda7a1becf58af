#!/usr/bin/env bash
# Installs headless Chromium from Debian's packages if it is missing: the end-to-end tests
# render the API reference page and message HTML in it (the test kit's `browser` module),
# with no network but loopback. Idempotent: with chromium present it does nothing. Usable
# both as a script and sourced (it then defines `ensure_chromium`).

ensure_chromium() {
    local bin
    for bin in chromium chromium-browser google-chrome; do
        command -v "$bin" >/dev/null 2>&1 && return 0
    done
    [ -n "${CHROMIUM:-}" ] && [ -x "$CHROMIUM" ] && return 0

    echo "== installing chromium"
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    local rc=0
    { "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" apt-get install -y -qq chromium >/dev/null; } || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "chromium install failed (apt-get exit $rc)" >&2
        return "$rc"
    fi
    command -v chromium >/dev/null 2>&1 || { echo "still missing after install: chromium" >&2; return 1; }
}

# Run directly (not sourced): do it.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    ensure_chromium
fi
