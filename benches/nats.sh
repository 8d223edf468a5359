#!/usr/bin/env bash
# NATS JetStream: events published per second through a NatsSink, and delivered per second
# end to end (emit → JetStream → `deskhook relay` → HTTP receiver) with 1 and 3 relays, next
# to direct HTTP delivery to the same receiver. Starts its own nats-server (JetStream, store
# in a new temporary directory) and nginx (benches/start-nginx.sh: one worker, 204 for
# everything), both on 127.0.0.1 only, and stops them at the end.
#
# Settings from the environment: EVENTS=20000 BODY_SIZE=1024 REPEAT=3 (median of the runs)
# NATS_PORT=14222 PORT=18559 (nginx) WIDE_PARTITIONS=64. The rows with one partition and with
# WIDE_PARTITIONS show what bounds end-to-end delivery: the round trips of one event in a
# partition, or the machine's CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-20000}
BODY_SIZE=${BODY_SIZE:-1024}
REPEAT=${REPEAT:-3}
NATS_PORT=${NATS_PORT:-14222}
PORT=${PORT:-18559}
WIDE_PARTITIONS=${WIDE_PARTITIONS:-64}

command -v nats-server >/dev/null || {
    echo "nats.sh: nats-server is not installed (apt-get install nats-server)" >&2
    exit 1
}
cargo build --release -q -p deskhook-cli
bin=target/release/deskhook
mkdir -p target/bench

store=$(mktemp -d "${TMPDIR:-/tmp}/deskhook-nats-bench.XXXXXX")
nats=""
cleanup() {
    if [[ -n "$nats" ]]; then
        kill "$nats" 2>/dev/null || true
        wait "$nats" 2>/dev/null || true
    fi
    benches/stop-nginx.sh "$PORT" >/dev/null 2>&1 || true
    rm -rf "$store"
}
trap cleanup EXIT

nats-server -js -a 127.0.0.1 -p "$NATS_PORT" --store_dir "$store/jetstream" -l "$store/nats.log" &
nats=$!
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null; then break; fi
    sleep 0.1
done
benches/start-nginx.sh "$PORT" >/dev/null
url="nats://127.0.0.1:$NATS_PORT"
http="http://127.0.0.1:$PORT/"

field() { sed -E "s/.*\"$1\":([0-9.]+|null).*/\1/"; }

# run KEY ARGS…: REPEAT runs of `deskhook bench ARGS…`; prints the JSON line of the run with
# the median value of the field KEY.
run() {
    local key=$1
    shift
    local lines=()
    for _ in $(seq 1 "$REPEAT"); do
        local line
        line=$("$bin" bench --events "$EVENTS" --body-size "$BODY_SIZE" "$@" 2>/dev/null |
            grep '^{' || true)
        if [[ -z "$line" ]]; then
            echo "nats.sh: deskhook bench $* failed" >&2
            exit 1
        fi
        echo "$line" >> target/bench/nats.jsonl
        lines+=("$(field "$key" <<<"$line") $line")
    done
    printf '%s\n' "${lines[@]}" | sort -n | sed -n "$(((REPEAT + 1) / 2))p" | cut -d' ' -f2-
}

: > target/bench/nats.jsonl
direct=$(run events_per_sec --transport blocking --url "$http" --allow-private)
publish=$(run publish_per_sec --transport nats --nats "$url")
narrow=$(run delivered_per_sec --transport nats --nats "$url" --relays 1 --url "$http" \
    --allow-private --partitions 1)
one=$(run delivered_per_sec --transport nats --nats "$url" --relays 1 --url "$http" --allow-private)
three=$(run delivered_per_sec --transport nats --nats "$url" --relays 3 --url "$http" --allow-private)
wide=$(run delivered_per_sec --transport nats --nats "$url" --relays 3 --url "$http" \
    --allow-private --partitions "$WIDE_PARTITIONS")

us() { awk "BEGIN{printf \"%.1f µs\", $1/1000}"; }
row() {
    local name=$1 line=$2
    local e2e
    e2e=$(field delivered_per_sec <<<"$line")
    [[ "$line" == *delivered_per_sec* ]] || e2e=""
    [[ "$e2e" == null ]] && e2e=""
    echo "| $name | $(field events_per_sec <<<"$line") | ${e2e} | $(us "$(field emit_ns_p50 <<<"$line")") | $(us "$(field emit_ns_p99 <<<"$line")") |"
}
echo "$EVENTS events of $BODY_SIZE bytes, median of $REPEAT runs"
echo
echo "| Run | published (or delivered) /s | delivered end to end /s | emit p50 | emit p99 |"
echo "|---|---|---|---|---|"
row "HTTP direct (blocking, 16 in flight)" "$direct"
row "NATS, publish only (64 in flight)" "$publish"
row "NATS, 1 relay, 1 partition" "$narrow"
row "NATS, 1 relay, 16 partitions" "$one"
row "NATS, 3 relays, 16 partitions" "$three"
row "NATS, 3 relays, $WIDE_PARTITIONS partitions" "$wide"
echo
echo "(every run's JSON line in target/bench/nats.jsonl)"
