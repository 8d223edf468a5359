#!/usr/bin/env bash
# Stops the nginx that start-nginx.sh started on PORT (default 18080): signals only the pid
# in its prefix's nginx.pid, then removes the prefix directory.
#
#   benches/stop-nginx.sh [PORT]
set -euo pipefail

port="${1:-${PORT:-18080}}"
record="${TMPDIR:-/tmp}/deskhook-nginx-$port.prefix"
if [[ ! -f "$record" ]]; then
    echo "stop-nginx.sh: no nginx started by start-nginx.sh on port $port" >&2
    exit 0
fi
prefix="$(cat "$record")"
if [[ -s "$prefix/nginx.pid" ]]; then
    pid="$(cat "$prefix/nginx.pid")"
    # SIGQUIT: graceful stop of the master and its workers.
    kill -QUIT "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    echo "stopped nginx pid=$pid" >&2
fi
case "$prefix" in
    */deskhook-nginx.*) rm -rf "$prefix" ;;
esac
rm -f "$record"
