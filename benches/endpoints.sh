#!/usr/bin/env bash
# Many endpoints on one receiver: throughput to 1, 1,000 and 10,000 endpoints with the same
# requests in flight, the cost of `emit` and of registered endpoints with 100,000 endpoints
# over 50,000 tenants, and the memory of 1,000 endpoints that are all down while events flow.
#
#   benches/endpoints.sh
#
# What it does, in order:
#   1. installs nginx with apt-get if it is missing (root only);
#   2. builds `deskhook` (cargo build --release -p deskhook-cli);
#   3. starts nginx on 127.0.0.1:$PORT (benches/start-nginx.sh: one worker, 204 for
#      everything, so /e0, /e1, … all answer) and stops it on exit, whatever happens;
#   4. for each transport, REPEAT interleaved rounds of `deskhook bench --events $EVENTS
#      --concurrency $CONCURRENCY --tickets $TICKETS` with --endpoints 1, 1000 and 10000
#      (each run checks the order per endpoint and ticket);
#   5. `deskhook bench --endpoints 100000 --tenants 50000` (each event goes to the 2
#      endpoints of its tenant) next to 1 endpoint and to 2 endpoints of one tenant, REPEAT
#      rounds, median emit p50 of each: emit p50, threads, and the resident memory the
#      100,000 endpoints added when they were registered;
#   6. `deskhook bench --endpoints 1000` to a closed port on 127.0.0.1 (every endpoint down),
#      retries an hour apart, so that events pile up until the sink's memory budget
#      (max_queued_bytes, 256 MiB) drops the rest: peak RSS;
#   7. prints a table with the ratios against the targets. Raw JSON lines are kept in
#      target/bench/endpoints/.
#
# Everything goes to 127.0.0.1 only. Settings (environment): PORT=18080 EVENTS=100000
# CONCURRENCY=16 TICKETS=997 BODY_SIZE=1024 REPEAT=3 DOWN_EVENTS=400000.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
PORT="${PORT:-18080}"
EVENTS="${EVENTS:-100000}"
CONCURRENCY="${CONCURRENCY:-16}"
TICKETS="${TICKETS:-997}"
BODY_SIZE="${BODY_SIZE:-1024}"
REPEAT="${REPEAT:-3}"
DOWN_EVENTS="${DOWN_EVENTS:-400000}"
URL="http://127.0.0.1:$PORT/"
out="$root/target/bench/endpoints"
mkdir -p "$out"
rm -f "$out"/*.json

say() { printf '== %s\n' "$*" >&2; }

say "building deskhook (release)"
(cd "$root" && cargo build --release -q -p deskhook-cli)
deskhook="$root/target/release/deskhook"

trap '"$here/stop-nginx.sh" "$PORT" >/dev/null 2>&1 || true' EXIT
"$here/start-nginx.sh" "$PORT" >&2
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"

field() { # field NAME FILE: a number (or null) from a one-line JSON report
    { grep -o "\"$1\":[^,}]*" "$2" || true; } | head -n1 | cut -d: -f2
}
bench() { # bench NAME ARGS...: one JSON line into $out/NAME.json
    local name="$1"
    shift
    say "deskhook bench $name"
    "$deskhook" bench --body-size "$BODY_SIZE" --allow-private "$@" > "$out/$name.json" \
        || say "deskhook bench $name did not deliver everything"
    cat "$out/$name.json" >&2
}
median() { # median NAME [FIELD]: the run of NAME.<round> with the median FIELD, as NAME.json
    local name="$1" key="${2:-events_per_sec}" f best
    best="$(for f in "$out/$name".r[0-9]*.json; do
        echo "$(field "$key" "$f") $f"
    done | sort -n | awk -v n="$REPEAT" 'NR == int((n + 1) / 2) { print $2 }')"
    cp "$best" "$out/$name.json"
}

# 4. Throughput to 1, 1,000 and 10,000 endpoints, rounds interleaved.
common=(--url "$URL" --events "$EVENTS" --concurrency "$CONCURRENCY" --tickets "$TICKETS")
for round in $(seq 1 "$REPEAT"); do
    for transport in blocking async; do
        for n in 1 1000 10000; do
            bench "$transport-$n.r$round" "${common[@]}" --transport "$transport" --endpoints "$n"
        done
    done
done
for transport in blocking async; do
    for n in 1 1000 10000; do
        median "$transport-$n"
    done
done

# 5. 100,000 endpoints over 50,000 tenants, next to 1 endpoint and to 2 endpoints of one
#    tenant (each event goes to both, as it goes to the 2 of its tenant in the big run).
for round in $(seq 1 "$REPEAT"); do
    bench "emit-1.r$round" "${common[@]}" --transport blocking
    bench "emit-2.r$round" "${common[@]}" --transport blocking --endpoints 2 --tenants 1
    bench "emit-100000.r$round" "${common[@]}" --transport blocking \
        --endpoints 100000 --tenants 50000
done
for name in emit-1 emit-2 emit-100000; do
    median "$name" emit_ns_p50
done

# 6. 1,000 endpoints, all down.
closed_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
bench down-1000 --url "http://127.0.0.1:$closed_port/" --events "$DOWN_EVENTS" \
    --concurrency "$CONCURRENCY" --endpoints 1000 --retry 0s,1h --wait 1s

# 7. The table.
rps() { field events_per_sec "$out/$1.json"; }
kb() { field "$2" "$out/$1.json"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
verdict() { # verdict VALUE OP TARGET
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
        ok = (op == ">=") ? (v >= t) : (v <= t); print (ok ? "met" : "MISSED") }'
}
echo
echo "deskhook to many endpoints: $EVENTS events, $BODY_SIZE-byte bodies, $CONCURRENCY in flight"
echo "over the whole sink, $TICKETS tickets, nginx on $URL"
echo "($(nproc) cores, load average before: $load_before; median of $REPEAT interleaved rounds each)"
echo
printf '%-28s %12s %10s %12s %8s %7s\n' "run" "deliveries/s" "emit p50" "RSS max" "threads" "order"
for name in blocking-1 blocking-1000 blocking-10000 async-1 async-1000 async-10000 emit-1 emit-2 emit-100000 down-1000; do
    printf '%-28s %12s %7s ns %9s kB %8s %7s\n' "$name" "$(rps "$name")" \
        "$(kb "$name" emit_ns_p50)" "$(kb "$name" rss_max_kb)" "$(kb "$name" threads_max)" \
        "$(kb "$name" order_violations)"
done
echo
printf '%-48s %10s %10s %8s\n' "ratio" "measured" "target" ""
row() { printf '%-48s %10s %10s %8s\n' "$1" "$2" "$3 $4" "$(verdict "$2" "$3" "$4")"; }
spread() { # spread TRANSPORT N: each round's N endpoints / the same round's 1, lowest-highest
    local r
    for r in $(seq 1 "$REPEAT"); do
        ratio "$(rps "$1-$2.r$r")" "$(rps "$1-1.r$r")"
        echo
    done | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'
}
for transport in blocking async; do
    for n in 1000 10000; do
        row "$transport: $n endpoints / 1 endpoint" \
            "$(ratio "$(rps "$transport-$n")" "$(rps "$transport-1")")" ">=" 0.9
    done
done
for transport in blocking async; do
    echo "  $transport, round by round: 1000 / 1 $(spread "$transport" 1000)," \
        "10000 / 1 $(spread "$transport" 10000)"
done
row "emit p50: 100,000 endpoints, 50,000 tenants / 1" \
    "$(ratio "$(kb emit-100000 emit_ns_p50)" "$(kb emit-1 emit_ns_p50)")" "<=" 1.2
row "emit p50: 100,000 endpoints, 50,000 tenants / 2" \
    "$(ratio "$(kb emit-100000 emit_ns_p50)" "$(kb emit-2 emit_ns_p50)")" "<=" 1.2
per_endpoint="$(awk -v kb="$(kb emit-100000 rss_endpoints_kb)" 'BEGIN { printf "%.2f", kb / 100000 }')"
row "KiB per registered endpoint (100,000)" "$per_endpoint" "<=" 4
echo "peak RSS with 1,000 endpoints down and $DOWN_EVENTS events: $(kb down-1000 rss_max_kb) kB," \
    "$(kb down-1000 delivered) delivered, $(kb down-1000 failed) not delivered (dropped by the" \
    "memory budget, or waiting for a retry at exit)"
echo
echo "raw results: $out"
