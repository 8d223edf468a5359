#!/usr/bin/env bash
# The operator's surface: what `deskhook serve` ingests over HTTP next to nginx, and what
# recording every attempt for the console costs the delivery path.
#
#   benches/console.sh
#
# What it does, in order:
#   1. installs nginx and wrk with apt-get if they are missing (root only);
#   2. builds `deskhook` (cargo build --release -p deskhook-cli);
#   3. starts nginx on 127.0.0.1:$PORT (benches/start-nginx.sh: one worker, 204 for
#      everything) and stops it, and every deskhook it started, on exit;
#   4. serve ingest: `wrk -t2 -c$CONCURRENCY -d$DURATION -s benches/post-event.lua` POSTing
#      the reference Zenlix event (`deskhook render --action create`) to nginx, then to
#      `deskhook serve` on 127.0.0.1:$SERVE_PORT: with no endpoint subscribed to the event
#      (the cost of accepting it: token, parse, render, route, answer), then delivering
#      every event to nginx without a spool and with one (synchronous = full), REPEAT rounds
#      interleaved. What counts is events accepted (202) per second: a daemon whose queue
#      is full answers 503 (counted by wrk as non-2xx), so delivery speed bounds it;
#   5. the attempt log's cost: `deskhook bench` (both transports, $EVENTS events) with
#      `--attempt-log 10000` (the default) and `--attempt-log 0` (off), REPEAT rounds
#      interleaved, the order of on and off swapped every round (the second of two runs in
#      a row tends to be faster);
#   6. prints a table: medians, and the ratios (serve / nginx; attempt log on / off).
#
# The console's page times are a criterion benchmark: cargo bench -p deskhook-console.
#
# Everything goes to 127.0.0.1 only. Settings (environment): PORT=18080 SERVE_PORT=18089
# CONCURRENCY=16 DURATION=10s EVENTS=100000 BODY_SIZE=1024 REPEAT=3, and PARTS="serve
# attempt-log" (either alone to run one part).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
PORT="${PORT:-18080}"
SERVE_PORT="${SERVE_PORT:-18089}"
CONCURRENCY="${CONCURRENCY:-16}"
DURATION="${DURATION:-10s}"
EVENTS="${EVENTS:-100000}"
BODY_SIZE="${BODY_SIZE:-1024}"
REPEAT="${REPEAT:-3}"
PARTS="${PARTS:-serve attempt-log}"
URL="http://127.0.0.1:$PORT/"
out="$root/target/bench/console"
mkdir -p "$out"
rm -rf "${out:?}"/*

say() { printf '== %s\n' "$*" >&2; }

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if ((${#missing[@]})); then
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "console.sh: missing ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # The package starts and enables a system nginx on port 80 of every interface where
    # there is an init system; the benchmark runs its own on loopback, so turn that one off.
    if [[ " ${missing[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now nginx >/dev/null 2>&1 || true
    fi
fi
export DESKHOOK_APT_UPDATED=1

say "building deskhook (release)"
(cd "$root" && cargo build --release -q -p deskhook-cli)
deskhook="$root/target/release/deskhook"

serve_pid=""
cleanup() {
    [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    "$here/stop-nginx.sh" "$PORT" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$here/start-nginx.sh" "$PORT" >&2
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"

# 4. serve ingest.
export TOKEN="bench-token-$(date +%s)-$$"
export EVENT_FILE="$out/event.json"
"$deskhook" render --action create > "$EVENT_FILE"
cat > "$out/deliver.toml" <<TOML
[[endpoint]]
name = "nginx"
url = "$URL"
allow_private = true
TOML
cat > "$out/ingest.toml" <<TOML
[[endpoint]]
name = "nginx-comments"
url = "$URL"
allow_private = true
actions = ["comment"]
TOML

wrk_run() { # wrk_run NAME URL: accepted (2xx) requests/s into $out/NAME.rps
    local name="$1" url="$2"
    wrk -t2 -c"$CONCURRENCY" -d"$DURATION" -s "$here/post-event.lua" "$url" > "$out/$name.txt"
    cat "$out/$name.txt" >&2
    awk '/ requests in / { n = $1; t = $4 + 0 }
         /^  Non-2xx or 3xx responses:/ { bad = $5 }
         END { printf "%.0f\n", (n - bad) / t }' "$out/$name.txt" >> "$out/$name.rps"
}
serve_run() { # serve_run NAME CONFIG [--spool DIR]
    local name="$1" config="$2"
    shift 2
    DESKHOOK_TOKEN="$TOKEN" "$deskhook" serve --config "$out/$config.toml" \
        --listen "127.0.0.1:$SERVE_PORT" --grace 30s "$@" > "$out/$name.serve.log" 2>&1 &
    serve_pid=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$SERVE_PORT") 2>/dev/null && break
        sleep 0.05
    done
    wrk_run "$name" "http://127.0.0.1:$SERVE_PORT/v1/events"
    kill -TERM "$serve_pid"
    wait "$serve_pid" || true
    serve_pid=""
    tail -n1 "$out/$name.serve.log" >&2
}
part() { [[ " $PARTS " == *" $1 "* ]]; }
part serve && for round in $(seq 1 "$REPEAT"); do
    say "serve ingest, round $round of $REPEAT"
    wrk_run nginx "$URL"
    serve_run serve-ingest ingest
    serve_run serve deliver
    rm -rf "$out/spool"
    serve_run serve-spool deliver --spool "$out/spool"
done

# 5. The attempt log's cost.
field() { { grep -o "\"$1\":[^,}]*" "$2" || true; } | head -n1 | cut -d: -f2; }
part attempt-log && for round in $(seq 1 "$REPEAT"); do
    for transport in async blocking; do
        order="10000 0"
        ((round % 2 == 0)) && order="0 10000"
        for log in $order; do
            say "deskhook bench --transport $transport --attempt-log $log (round $round)"
            "$deskhook" bench --url "$URL" --events "$EVENTS" --concurrency "$CONCURRENCY" \
                --body-size "$BODY_SIZE" --allow-private --transport "$transport" \
                --attempt-log "$log" > "$out/bench.$transport.$log.$round.json"
            cat "$out/bench.$transport.$log.$round.json" >&2
            field events_per_sec "$out/bench.$transport.$log.$round.json" \
                >> "$out/bench.$transport.$log.rps"
        done
    done
done

# 6. The table.
median() { sort -n "$out/$1.rps" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
if part serve; then
nginx="$(median nginx)"
ingest="$(median serve-ingest)"
serve="$(median serve)"
spool="$(median serve-spool)"
printf '\nserve ingest (wrk -t2 -c%s -d%s, the reference create event, %s rounds; load before %s)\n' \
    "$CONCURRENCY" "$DURATION" "$REPEAT" "$load_before"
printf '| target | accepted/s | vs nginx |\n|---|---:|---:|\n'
printf '| nginx answering 204 | %s | 1.00 |\n' "$nginx"
printf '| deskhook serve, accepting (no endpoint subscribed) | %s | %s |\n' "$ingest" "$(ratio "$ingest" "$nginx")"
printf '| deskhook serve, accepting and delivering to nginx | %s | %s |\n' "$serve" "$(ratio "$serve" "$nginx")"
printf '| deskhook serve, the same with a spool (synchronous = full) | %s | %s |\n' "$spool" "$(ratio "$spool" "$nginx")"
fi
part attempt-log || exit 0
printf '\nattempt log (deskhook bench, %s events of %s bytes, -c%s, %s rounds)\n' \
    "$EVENTS" "$BODY_SIZE" "$CONCURRENCY" "$REPEAT"
printf '| transport | log on (events/s) | log off (events/s) | on / off | target |\n|---|---:|---:|---:|---|\n'
for transport in async blocking; do
    on="$(median "bench.$transport.10000")"
    off="$(median "bench.$transport.0")"
    r="$(ratio "$on" "$off")"
    verdict="$(awk -v r="$r" 'BEGIN { print (r >= 0.95) ? "met (>= 0.95)" : "MISSED (>= 0.95)" }')"
    printf '| %s | %s | %s | %s | %s |\n' "$transport" "$on" "$off" "$r" "$verdict"
done
