#!/usr/bin/env bash
# The durable spool: events made durable per second with group commit against one fsync per
# event, on the same disk, and peak RSS with a 100 000-event backlog to an endpoint that is
# down. Everything is sent to 127.0.0.1 only; the spools live in $SPOOL_DIR (default
# target/spool-bench, on the disk of the repository: put it where the helpdesk's spool would be).
#
# Settings from the environment: EVENTS=100000 SINGLE_EVENTS=5000 BODY_SIZE=1024
# PORT=18557 (deskhook listen, the receiver that is up) DOWN_PORT=1 (nothing listens there).
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-100000}
SINGLE_EVENTS=${SINGLE_EVENTS:-5000}
BODY_SIZE=${BODY_SIZE:-1024}
PORT=${PORT:-18557}
DOWN_PORT=${DOWN_PORT:-1}
SPOOL_DIR=${SPOOL_DIR:-target/spool-bench}

cargo build --release -q -p deskhook-cli
bin=target/release/deskhook
mkdir -p "$SPOOL_DIR"

"$bin" listen --addr "127.0.0.1:$PORT" >/dev/null &
listener=$!
trap 'kill $listener 2>/dev/null; wait $listener 2>/dev/null || true' EXIT
sleep 0.3

# run NAME URL EVENTS EXTRA-ARGS…: one bench through a fresh spool; prints its JSON line.
run() {
    local name=$1 url=$2 events=$3
    shift 3
    rm -rf "${SPOOL_DIR:?}/$name"
    "$bin" bench --url "$url" --allow-private --events "$events" --body-size "$BODY_SIZE" \
        --spool "$SPOOL_DIR/$name" "$@" 2>/dev/null | grep '^{' || true
    rm -rf "${SPOOL_DIR:?}/$name"
}

field() { sed -E "s/.*\"$1\":([0-9.]+|null).*/\1/"; }

down="http://127.0.0.1:$DOWN_PORT/"
up="http://127.0.0.1:$PORT/"
group_down=$(run group-down "$down" "$EVENTS" --retry 0s,1h --wait 1s)
single_down=$(run single-down "$down" "$SINGLE_EVENTS" --retry 0s,1h --wait 1s --spool-max-batch 1)
group_up=$(run group-up "$up" "$EVENTS")
single_up=$(run single-up "$up" "$SINGLE_EVENTS" --spool-max-batch 1)

printf '%s\n' "$group_down" "$single_down" "$group_up" "$single_up" > target/spool-bench.jsonl
g_down=$(field durable_per_sec <<<"$group_down")
s_down=$(field durable_per_sec <<<"$single_down")
g_up=$(field durable_per_sec <<<"$group_up")
s_up=$(field durable_per_sec <<<"$single_up")
echo "| Receiver | group commit (durable events/s) | one fsync per event | ratio |"
echo "|---|---|---|---|"
echo "| down (nothing delivered) | $g_down | $s_down | $(awk "BEGIN{printf \"%.1f\", $g_down/$s_down}") × |"
echo "| up (delivery runs meanwhile) | $g_up | $s_up | $(awk "BEGIN{printf \"%.1f\", $g_up/$s_up}") × |"
echo
echo "peak RSS with a backlog of $EVENTS events to an endpoint that is down: $(field rss_max_kb <<<"$group_down") KiB"
echo "(raw lines in target/spool-bench.jsonl)"
