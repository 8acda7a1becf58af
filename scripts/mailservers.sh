#!/usr/bin/env bash
# Installs the mail servers the email connector's tests run against, if any is missing:
# Dovecot (IMAP + LMTP), Postfix (its master and smtp-sink), swaks (a real SMTP client) and
# isync (mbsync, for the benchmark). The tests start their own private instances from
# generated configs on free loopback ports; the system-wide services must stay stopped, so
# the install runs behind a policy-rc.d that forbids starting them, and stops them after in
# case something started them anyway. Idempotent: with everything present it does nothing.
# Usable both as a script and sourced (it then defines `ensure_mailservers`).

ensure_mailservers() {
    local missing=() bin
    for bin in dovecot doveadm postfix smtp-sink postconf swaks mbsync; do
        command -v "$bin" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/usr/lib/dovecot" command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
    done
    # The LMTP server is a separate package with no binary on PATH.
    [ -x /usr/lib/dovecot/lmtp ] || missing+=("lmtp")
    [ ${#missing[@]} -eq 0 ] && return 0

    echo "== installing mail servers (missing: ${missing[*]})"
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    # Postfix: no system configuration; we only use its binaries with our own config dirs.
    echo "postfix postfix/main_mailer_type select No configuration" | "${sudo[@]}" debconf-set-selections
    echo "postfix postfix/mailname string localhost" | "${sudo[@]}" debconf-set-selections
    # Forbid services from starting during the install (exit 101 = action not allowed).
    local policy=/usr/sbin/policy-rc.d restore_policy=""
    if [ -e "$policy" ]; then
        restore_policy=$(mktemp)
        "${sudo[@]}" cp -p "$policy" "$restore_policy"
    fi
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    local rc=0
    { "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            dovecot-core dovecot-imapd dovecot-lmtpd postfix swaks isync >/dev/null; } || rc=$?
    if [ -n "$restore_policy" ]; then
        "${sudo[@]}" mv "$restore_policy" "$policy"
    else
        "${sudo[@]}" rm -f "$policy"
    fi
    # Belt and braces: if a system-wide instance runs anyway, stop it (ours use their own configs).
    if [ -r /run/dovecot/master.pid ]; then
        "${sudo[@]}" kill "$(cat /run/dovecot/master.pid)" 2>/dev/null || true
    fi
    if [ -r /var/spool/postfix/pid/master.pid ]; then
        "${sudo[@]}" postfix stop >/dev/null 2>&1 || true
    fi
    if [ "$rc" -ne 0 ]; then
        echo "mail server install failed (apt-get exit $rc)" >&2
        return "$rc"
    fi
    for bin in dovecot doveadm postfix smtp-sink swaks mbsync; do
        PATH="$PATH:/usr/sbin" command -v "$bin" >/dev/null 2>&1 || { echo "still missing after install: $bin" >&2; return 1; }
    done
}

# Run directly (not sourced): do it.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    ensure_mailservers
fi
