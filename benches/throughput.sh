#!/usr/bin/env bash
# Delivery throughput of deskhook against nginx on loopback, next to wrk (the ceiling: what
# the same machine can push through nginx over keep-alive) and a sender that opens a new
# TCP connection per event (the floor: a naive webhook sender).
#
#   benches/throughput.sh
#
# What it does, in order:
#   1. installs nginx and wrk with apt-get if they are missing (root only; `apt-get update`
#      once first);
#   2. builds `deskhook` (cargo build --release -p deskhook-cli) and the baseline
#      (rustc -O benches/baseline_new_connection.rs, standard library only);
#   3. starts nginx on 127.0.0.1:$PORT (benches/start-nginx.sh: one worker, 204 for
#      everything, keep-alive, no access log) and stops it on exit, whatever happens;
#   4. runs wrk -t2 -c$CONCURRENCY -d$DURATION -s benches/post.lua (POST, $BODY_SIZE bytes);
#   5. runs deskhook bench --transport async and --transport blocking, each without and with
#      --secret, --events $EVENTS --concurrency $CONCURRENCY --body-size $BODY_SIZE
#      --allow-private;
#   6. runs the baseline with $BASELINE_EVENTS events and $CONCURRENCY threads;
#   7. prints a table of requests/s, emit p50/p99 and peak RSS, and the ratios against the
#      targets. The raw JSON lines are kept in target/bench/.
#
# Each deskhook configuration and the baseline run REPEAT times (rounds interleaved); the
# table shows the run with the median requests/s (and that run's emit percentiles and RSS).
#
# Everything goes to 127.0.0.1 only. Settings (environment): PORT=18080 EVENTS=100000
# CONCURRENCY=16 BODY_SIZE=1024 DURATION=10s BASELINE_EVENTS=$EVENTS REPEAT=3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
PORT="${PORT:-18080}"
EVENTS="${EVENTS:-100000}"
CONCURRENCY="${CONCURRENCY:-16}"
BODY_SIZE="${BODY_SIZE:-1024}"
DURATION="${DURATION:-10s}"
BASELINE_EVENTS="${BASELINE_EVENTS:-$EVENTS}"
REPEAT="${REPEAT:-3}"
# The Standard Webhooks specification's example secret; any whsec_ secret does.
SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL="http://127.0.0.1:$PORT/"
out="$root/target/bench"
mkdir -p "$out"

say() { printf '== %s\n' "$*" >&2; }

# 1. nginx and wrk.
missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if ((${#missing[@]})); then
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "throughput.sh: missing ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export DESKHOOK_APT_UPDATED=1

# 2. Builds.
say "building deskhook (release) and the baseline"
(cd "$root" && cargo build --release -q -p deskhook-cli)
deskhook="$root/target/release/deskhook"
baseline="$root/target/release/baseline_new_connection"
rustc -O --edition 2021 "$here/baseline_new_connection.rs" -o "$baseline"

# 3. nginx, stopped on exit.
trap '"$here/stop-nginx.sh" "$PORT" >/dev/null 2>&1 || true' EXIT
"$here/start-nginx.sh" "$PORT" >&2

load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"

# 4. wrk.
say "wrk -t2 -c$CONCURRENCY -d$DURATION, $BODY_SIZE-byte POSTs"
BODY_SIZE="$BODY_SIZE" wrk -t2 -c"$CONCURRENCY" -d"$DURATION" -s "$here/post.lua" "$URL" \
    | tee "$out/wrk.txt" >&2
wrk_rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out/wrk.txt")"

# 5. deskhook.
field() { # field NAME FILE: a number (or null) from a one-line JSON report
    { grep -o "\"$1\":[^,}]*" "$2" || true; } | head -n1 | cut -d: -f2
}
run_bench() { # run_bench NAME ROUND ARGS...: one JSON line into $out/NAME.ROUND.json
    local name="$1" round="$2"
    shift 2
    say "deskhook bench $name (run $round of $REPEAT)"
    "$deskhook" bench --url "$URL" --events "$EVENTS" --concurrency "$CONCURRENCY" \
        --body-size "$BODY_SIZE" --allow-private "$@" > "$out/$name.$round.json" \
        || say "deskhook bench $name did not deliver everything"
    cat "$out/$name.$round.json" >&2
}
median() { # median NAME: copies the run with the median events_per_sec to $out/NAME.json
    local name="$1" f best
    best="$(for f in "$out/$name".[0-9]*.json; do
        echo "$(field events_per_sec "$f") $f"
    done | sort -n | awk -v n="$REPEAT" 'NR == int((n + 1) / 2) { print $2 }')"
    cp "$best" "$out/$name.json"
}
rm -f "$out"/*.json
# Rounds interleave the four configurations, so that a slow spell of the machine does not
# fall on one of them only.
for round in $(seq 1 "$REPEAT"); do
    run_bench async "$round" --transport async
    run_bench async-signed "$round" --transport async --secret "$SECRET"
    run_bench blocking "$round" --transport blocking
    run_bench blocking-signed "$round" --transport blocking --secret "$SECRET"
done
for name in async async-signed blocking blocking-signed; do
    median "$name"
done

# 6. The baseline.
say "baseline: a new connection per event, $BASELINE_EVENTS events, $CONCURRENCY threads"
for round in $(seq 1 "$REPEAT"); do
    "$baseline" --url "$URL" --events "$BASELINE_EVENTS" --concurrency "$CONCURRENCY" \
        --body-size "$BODY_SIZE" > "$out/baseline.$round.json" || say "the baseline had failures"
    cat "$out/baseline.$round.json" >&2
done
median baseline

# 7. The table.
rps() { field events_per_sec "$out/$1.json"; }
us() { # emit percentile in µs
    local v
    v="$(field "$2" "$out/$1.json")"
    awk -v v="$v" 'BEGIN { if (v == "" || v == "null") print "-"; else printf "%.1f", v / 1000 }'
}
mb() {
    local v
    v="$(field rss_max_kb "$out/$1.json")"
    awk -v v="$v" 'BEGIN { if (v == "" || v == "null") print "-"; else printf "%.0f", v / 1024 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
verdict() { # verdict VALUE OP TARGET
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
        ok = (op == ">=") ? (v >= t) : (v < t); print (ok ? "met" : "MISSED") }'
}

echo
echo "deskhook throughput: $EVENTS events, $BODY_SIZE-byte bodies, $CONCURRENCY in flight, nginx on $URL"
echo "($(nproc) cores, load average before: $load_before; median of $REPEAT runs each)"
echo
printf '%-36s %12s %10s %10s %9s\n' "sender" "requests/s" "emit p50" "emit p99" "RSS max"
printf '%-36s %12s %10s %10s %9s\n' "wrk -t2 -c$CONCURRENCY (keep-alive)" "$wrk_rps" "" "" ""
for name in async async-signed blocking blocking-signed; do
    printf '%-36s %12s %8s µs %7s µs %6s MB\n' "deskhook $name" "$(rps "$name")" \
        "$(us "$name" emit_ns_p50)" "$(us "$name" emit_ns_p99)" "$(mb "$name")"
done
printf '%-36s %12s\n' "baseline (new connection per event)" "$(rps baseline)"
echo
printf '%-36s %10s %10s %8s\n' "ratio" "measured" "target" ""
row() { printf '%-36s %10s %10s %8s\n' "$1" "$2" "$3 $4" "$(verdict "$2" "$3" "$4")"; }
row "async / wrk" "$(ratio "$(rps async)" "$wrk_rps")" ">=" 0.8
row "blocking / wrk" "$(ratio "$(rps blocking)" "$wrk_rps")" ">=" 0.6
row "async / baseline" "$(ratio "$(rps async)" "$(rps baseline)")" ">=" 10
row "blocking / baseline" "$(ratio "$(rps blocking)" "$(rps baseline)")" ">=" 10
row "async signed / unsigned" "$(ratio "$(rps async-signed)" "$(rps async)")" ">=" 0.9
row "blocking signed / unsigned" "$(ratio "$(rps blocking-signed)" "$(rps blocking)")" ">=" 0.9
for name in async async-signed blocking blocking-signed; do
    row "emit p99 (µs), $name" "$(us "$name" emit_ns_p99)" "<" 20
done
echo
echo "raw results: $out"
