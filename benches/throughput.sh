#!/usr/bin/env bash
# Delivery throughput and CPU of deskhook against nginx on loopback, next to wrk (the
# ceiling: what the same machine pushes through nginx over keep-alive), over plain HTTP and
# over TLS, and next to senders that open a new connection per event (the floor: a naive
# webhook sender; over TLS, what a curl-per-event sender such as the Zenlix original does).
#
#   benches/throughput.sh
#
# What it does, in order:
#   1. installs nginx, wrk and openssl with apt-get if they are missing (root only);
#   2. builds `deskhook` (cargo build --release -p deskhook-cli), the bare sender (cargo
#      bench --no-run) and the plain-HTTP baseline (rustc -O
#      benches/baseline_new_connection.rs, standard library only);
#   3. makes a private CA and an ECDSA P-256 certificate for 127.0.0.1 (benches/make-cert.sh,
#      openssl), and starts nginx on 127.0.0.1:$PORT (HTTP) and 127.0.0.1:$TLS_PORT (TLS)
#      (benches/start-nginx.sh: one worker, 204 for everything, keep-alive, no access log);
#      stops it on exit, whatever happens;
#   4. for each body size in $BODY_SIZES, over plain HTTP, in each round: wrk -t2
#      -c$CONCURRENCY -d$DURATION (POST, keep-alive), the bare sender (6. below), then
#      deskhook bench --transport async and blocking, unsigned and signed (--secret), and
#      each with --paused (the endpoint paused: emit alone, the reference for emit's
#      percentiles during the flood), each with
#      --backlog $BACKLOG (the emitting loop keeps at most that many deliveries unsettled:
#      the flood in a steady state, memory reused, instead of every event queued at once),
#      and the baseline;
#   5. over TLS with $TLS_BODY_SIZE-byte bodies, in each round: wrk keep-alive, wrk -H
#      'Connection: close' (a new TLS connection per request), and deskhook bench async and
#      blocking with --ca-file;
#   6. over plain HTTP, next to wrk, two references for the async transport: a bare
#      HTTP/1.1 sender on tokio (transports/benches/h1_bare.rs: the request prebuilt, the
#      answer read with httparse, no HTTP library; what tokio itself costs), and with REWRK
#      set rewrk (a load generator on hyper's client::conn and tokio, one runtime thread,
#      -c$CONCURRENCY connections; what hyper reaches on this machine);
#   7. prints, per run, requests/s, CPU per request (user + system of the sender's process,
#      every thread, divided by its requests: wrk's from the shell's `times`, deskhook's
#      from its report), emit p50/p99 and peak RSS, and the ratios against the targets.
#
# Each round runs wrk, the bare sender and every deskhook configuration once, so that a
# slow spell of the machine falls on the references as much as on deskhook; there are
# REPEAT rounds (the baseline runs REPEAT times too). The tables show each sender's run
# with the median requests/s (and that run's other figures); the ratios are of those
# medians, and each is followed by its spread: the lowest and highest ratio of one round's
# deskhook run to the same round's reference. The raw output is kept in target/bench/.
#
# Everything goes to 127.0.0.1 only. Settings (environment): PORT=18080 TLS_PORT=18443
# EVENTS=100000 CONCURRENCY=16 BODY_SIZES="1024 10240" TLS_BODY_SIZE=10240 TLS_EVENTS=50000
# DURATION=10s (whole seconds) BASELINE_EVENTS=20000 REPEAT=3 BACKLOG=1024, and REWRK:
# unset (no rewrk run), the path of a rewrk binary, or `install` (cargo install rewrk into
# target/rewrk first, a few minutes).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
PORT="${PORT:-18080}"
TLS_PORT="${TLS_PORT:-18443}"
EVENTS="${EVENTS:-100000}"
CONCURRENCY="${CONCURRENCY:-16}"
BODY_SIZES="${BODY_SIZES:-1024 10240}"
TLS_BODY_SIZE="${TLS_BODY_SIZE:-10240}"
TLS_EVENTS="${TLS_EVENTS:-50000}"
DURATION="${DURATION:-10s}"
BASELINE_EVENTS="${BASELINE_EVENTS:-20000}"
REPEAT="${REPEAT:-3}"
BACKLOG="${BACKLOG:-1024}"
REWRK="${REWRK:-}"
# The Standard Webhooks specification's example secret; any whsec_ secret does.
SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL="http://127.0.0.1:$PORT/"
TLS_URL="https://127.0.0.1:$TLS_PORT/"
out="$root/target/bench"
mkdir -p "$out"

say() { printf '== %s\n' "$*" >&2; }

# 1. nginx, wrk and openssl.
missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if ((${#missing[@]})); then
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "throughput.sh: missing ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
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

# 2. Builds.
say "building deskhook (release) and the baseline"
(cd "$root" && cargo build --release -q -p deskhook-cli)
deskhook="$root/target/release/deskhook"
baseline="$root/target/release/baseline_new_connection"
rustc -O --edition 2021 "$here/baseline_new_connection.rs" -o "$baseline"
bare=(cargo bench -q -p deskhook-transports --features http-async --bench h1_bare --)
(cd "$root" && cargo bench -q -p deskhook-transports --features http-async --bench h1_bare --no-run)
if [ "$REWRK" = install ]; then
    say "installing rewrk into target/rewrk"
    cargo install -q rewrk --root "$root/target/rewrk"
    REWRK="$root/target/rewrk/bin/rewrk"
fi

# 3. The certificate, and nginx, stopped on exit.
rm -rf "$out"/*.json "$out"/*.txt "$out/tls"
"$here/make-cert.sh" "$out/tls" >/dev/null
trap '"$here/stop-nginx.sh" "$PORT" >/dev/null 2>&1 || true' EXIT
TLS_PORT="$TLS_PORT" TLS_CERT="$out/tls/cert.pem" TLS_KEY="$out/tls/key.pem" \
    "$here/start-nginx.sh" "$PORT" >&2

load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"

field() { # field NAME FILE: a number (or null) from a one-line JSON report
    { grep -o "\"$1\":[^,}]*" "$2" || true; } | head -n1 | cut -d: -f2
}
children_cpu() { # seconds of CPU (user + system) of the shell's finished children so far
    # `times` must run in this shell, not in a $(…) subshell, whose children are its own:
    # its second line is the children's user and system time, as 0m1.234s 0m5.678s.
    times > "$out/times.txt"
    awk 'NR == 2 { split($1, u, "m"); split($2, s, "m"); printf "%.3f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' \
        "$out/times.txt" > "$out/cpu.txt"
}
run_wrk() { # run_wrk NAME SIZE URL [WRK ARGS...]: requests/s and CPU µs/request into NAME.json
    local name="$1" size="$2" url="$3" before after requests rps
    shift 3
    say "wrk $name: -t2 -c$CONCURRENCY -d$DURATION $*, $size-byte POSTs"
    children_cpu
    before="$(cat "$out/cpu.txt")"
    BODY_SIZE="$size" wrk -t2 -c"$CONCURRENCY" -d"$DURATION" -s "$here/post.lua" "$@" "$url" \
        > "$out/$name.txt"
    children_cpu
    after="$(cat "$out/cpu.txt")"
    cat "$out/$name.txt" >&2
    requests="$(awk '/requests in/ { print $1 }' "$out/$name.txt")"
    rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out/$name.txt")"
    awk -v b="$before" -v a="$after" -v n="$requests" -v r="$rps" 'BEGIN {
        printf "{\"events_per_sec\":%s,\"cpu_us_per_delivery\":%.1f}\n", r, (a - b) * 1e6 / n }' \
        > "$out/$name.json"
}
run_rewrk() { # run_rewrk NAME SIZE URL: rewrk's requests/s and CPU µs/request into NAME.json
    local name="$1" size="$2" url="$3" before after
    say "rewrk $name: -t1 -c$CONCURRENCY -d$DURATION, $size-byte POSTs"
    children_cpu
    before="$(cat "$out/cpu.txt")"
    "$REWRK" -t1 -c"$CONCURRENCY" -d"$DURATION" -m post -b "$(head -c "$size" /dev/zero | tr '\0' x)" \
        -h "$url" --json > "$out/$name.txt"
    children_cpu
    after="$(cat "$out/cpu.txt")"
    cat "$out/$name.txt" >&2
    awk -v b="$before" -v a="$after" -F'[:,}]' '/requests_total/ {
        for (i = 1; i < NF; i++) {
            if ($i ~ /"requests_avg"/) r = $(i + 1)
            if ($i ~ /"requests_total"/) n = $(i + 1)
        }
        printf "{\"events_per_sec\":%.0f,\"cpu_us_per_delivery\":%.1f}\n", r, (a - b) * 1e6 / n }' \
        "$out/$name.txt" > "$out/$name.json"
}
run_bare() { # run_bare NAME SIZE URL: the bare sender's JSON line into NAME.json
    local name="$1" size="$2" url="$3" secs="${DURATION%s}"
    say "bare tokio + httparse $name: $CONCURRENCY connections, ${secs}s, $size-byte POSTs"
    (cd "$root" && "${bare[@]}" --url "$url" --concurrency "$CONCURRENCY" --body-size "$size" \
        --seconds "$secs") > "$out/$name.json"
    cat "$out/$name.json" >&2
}
run_bench() { # run_bench NAME ROUND ARGS...: one JSON line into $out/NAME.ROUND.json
    local name="$1" round="$2"
    shift 2
    say "deskhook bench $name (run $round of $REPEAT)"
    # A memory budget that holds every event, even of 10 KiB: the run measures delivery,
    # not what a full queue drops.
    "$deskhook" bench --concurrency "$CONCURRENCY" --allow-private --max-queued-bytes 4294967296 "$@" \
        > "$out/$name.$round.json" || say "deskhook bench $name did not deliver everything"
    cat "$out/$name.$round.json" >&2
}
median() { # median NAME: copies the run with the median events_per_sec to $out/NAME.json
    local name="$1" f best
    best="$(for f in "$out/$name".[0-9]*.json; do
        echo "$(field events_per_sec "$f") $f"
    done | sort -n | awk -v n="$REPEAT" 'NR == int((n + 1) / 2) { print $2 }')"
    cp "$best" "$out/$name.json"
}

# 4. Plain HTTP, each body size.
configurations="async async-signed async-paused async-backlog blocking blocking-signed blocking-paused blocking-backlog"
for size in $BODY_SIZES; do
    if [ -n "$REWRK" ]; then run_rewrk "rewrk-$size" "$size" "$URL"; fi
    common=(--url "$URL" --events "$EVENTS" --body-size "$size")
    # Rounds interleave the references and the configurations, so that a slow spell of the
    # machine does not fall on one of them only.
    for round in $(seq 1 "$REPEAT"); do
        run_wrk "wrk-$size.$round" "$size" "$URL"
        run_bare "bare-$size.$round" "$size" "$URL"
        run_bench "async-$size" "$round" "${common[@]}" --transport async
        run_bench "async-signed-$size" "$round" "${common[@]}" --transport async --secret "$SECRET"
        run_bench "async-paused-$size" "$round" "${common[@]}" --transport async --paused
        run_bench "blocking-$size" "$round" "${common[@]}" --transport blocking
        run_bench "blocking-signed-$size" "$round" "${common[@]}" --transport blocking --secret "$SECRET"
        run_bench "blocking-paused-$size" "$round" "${common[@]}" --transport blocking --paused
        run_bench "async-backlog-$size" "$round" "${common[@]}" --transport async --backlog "$BACKLOG"
        run_bench "blocking-backlog-$size" "$round" "${common[@]}" --transport blocking --backlog "$BACKLOG"
    done
    for name in wrk bare $configurations; do
        median "$name-$size"
    done
    say "baseline: a new connection per event, $BASELINE_EVENTS events, $CONCURRENCY threads"
    for round in $(seq 1 "$REPEAT"); do
        "$baseline" --url "$URL" --events "$BASELINE_EVENTS" --concurrency "$CONCURRENCY" \
            --body-size "$size" > "$out/baseline-$size.$round.json" || say "the baseline had failures"
        cat "$out/baseline-$size.$round.json" >&2
    done
    median "baseline-$size"
done

# 5. TLS.
tls=(--url "$TLS_URL" --ca-file "$out/tls/ca.pem" --events "$TLS_EVENTS" --body-size "$TLS_BODY_SIZE")
for round in $(seq 1 "$REPEAT"); do
    run_wrk "wrk-tls.$round" "$TLS_BODY_SIZE" "$TLS_URL"
    run_wrk "wrk-tls-close.$round" "$TLS_BODY_SIZE" "$TLS_URL" -H "Connection: close"
    run_bench "async-tls" "$round" "${tls[@]}" --transport async
    run_bench "blocking-tls" "$round" "${tls[@]}" --transport blocking
done
for name in wrk-tls wrk-tls-close async-tls blocking-tls; do
    median "$name"
done

# 6. The tables.
rps() { field events_per_sec "$out/$1.json"; }
num() { # num NAME FIELD SCALE: a field divided by SCALE with one decimal, or -
    local v
    v="$(field "$2" "$out/$1.json")"
    awk -v v="$v" -v s="$3" 'BEGIN { if (v == "" || v == "null") print "-"; else printf "%.1f", v / s }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "-" && b != "-") printf "%.2f", a / b; else print "-" }'; }
verdict() { # verdict VALUE OP TARGET
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
        if (v == "-") { print "-"; exit }
        ok = (op == ">=") ? (v >= t) : (v <= t); print (ok ? "met" : "MISSED") }'
}
line() { # line LABEL NAME
    printf '%-40s %11s %9s %10s %10s %8s\n' "$1" "$(rps "$2")" "$(num "$2" cpu_us_per_delivery 1)" \
        "$(num "$2" emit_ns_p50 1000)" "$(num "$2" emit_ns_p99 1000)" "$(num "$2" rss_max_kb 1024)"
}
header() {
    printf '%-40s %11s %9s %10s %10s %8s\n' "sender" "requests/s" "CPU µs/r" "emit p50" "emit p99" "RSS MB"
}
row() { # row LABEL VALUE OP TARGET [SPREAD]
    printf '%-48s %9s %9s %8s %s\n' "$1" "$2" "$3 $4" "$(verdict "$2" "$3" "$4")" "${5:-}"
}
spread() { # spread FIELD NAME REF: the lowest and highest ratio of a round's NAME to its REF
    local f="$1" a="$2" b="$3" round
    for round in $(seq 1 "$REPEAT"); do
        ratio "$(field "$f" "$out/$a.$round.json")" "$(field "$f" "$out/$b.$round.json")"
        echo
    done | grep -v '^-$' | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s–%s", lo, hi }'
}
rate() { spread events_per_sec "$@"; }
per() { spread cpu_us_per_delivery "$@"; }
cpu() { field cpu_us_per_delivery "$out/$1.json"; }

echo
echo "deskhook throughput: $CONCURRENCY in flight, nginx (one worker) on 127.0.0.1"
echo "($(nproc) cores, load average before: $load_before; deskhook: median of $REPEAT runs each)"
for size in $BODY_SIZES; do
    echo
    echo "plain HTTP, $size-byte bodies, $EVENTS events (emit µs; --paused: emit with no delivery; --backlog: at most $BACKLOG unsettled)"
    header
    line "wrk -t2 -c$CONCURRENCY (keep-alive)" "wrk-$size"
    line "bare tokio + httparse -c$CONCURRENCY" "bare-$size"
    if [ -n "$REWRK" ]; then line "rewrk -t1 -c$CONCURRENCY (hyper, keep-alive)" "rewrk-$size"; fi
    for name in $configurations; do
        line "deskhook $name" "$name-$size"
    done
    line "baseline (new connection per event)" "baseline-$size"
done
echo
echo "TLS (ECDSA P-256, HTTP/1.1), $TLS_BODY_SIZE-byte bodies, $TLS_EVENTS events"
header
line "wrk -t2 -c$CONCURRENCY (keep-alive)" "wrk-tls"
line "wrk -t2 -c$CONCURRENCY, Connection: close" "wrk-tls-close"
line "deskhook async" "async-tls"
line "deskhook blocking" "blocking-tls"
echo
printf '%-48s %9s %9s %8s %s\n' "ratio (of the medians)" "measured" "target" "" "rounds"
for size in $BODY_SIZES; do
    w="wrk-$size"
    for t in async blocking async-backlog blocking-backlog; do
        row "$t / wrk, $size B" "$(ratio "$(rps "$t-$size")" "$(rps "$w")")" ">=" \
            "$(case "$t" in async*) echo 0.7 ;; *) echo 0.5 ;; esac)" "$(rate "$t-$size" "$w")"
        row "CPU per request $t / wrk, $size B" "$(ratio "$(cpu "$t-$size")" "$(cpu "$w")")" "<=" 1.5 \
            "$(per "$t-$size" "$w")"
    done
    printf '%-48s %9s %9s %8s\n' "  bare tokio + httparse / wrk, $size B" \
        "$(ratio "$(rps "bare-$size")" "$(rps "$w")")" "" "(info)"
    printf '%-48s %9s %9s %8s\n' "  CPU per request bare / wrk, $size B" \
        "$(ratio "$(cpu "bare-$size")" "$(cpu "$w")")" "" "(info)"
    if [ -n "$REWRK" ]; then
        printf '%-48s %9s %9s %8s\n' "  rewrk (hyper) / wrk, $size B" \
            "$(ratio "$(rps "rewrk-$size")" "$(rps "$w")")" "" "(info)"
        printf '%-48s %9s %9s %8s\n' "  CPU per request rewrk / wrk, $size B" \
            "$(ratio "$(cpu "rewrk-$size")" "$(cpu "$w")")" "" "(info)"
    fi
    # Not the target's measure: the process's CPU without the emitting thread's (rendering
    # and queueing each event on the application's thread), next to wrk's whole.
    for t in async blocking; do
        printf '%-48s %9s %9s %8s\n' "  CPU $t beside emit / wrk, $size B" \
            "$(ratio "$(field cpu_us_per_delivery_beside_emit "$out/$t-$size.json")" "$(cpu "$w")")" \
            "" "(info)"
    done
    for t in async blocking; do
        row "$t signed / unsigned, $size B" "$(ratio "$(rps "$t-signed-$size")" "$(rps "$t-$size")")" \
            ">=" 0.9 "$(rate "$t-signed-$size" "$t-$size")"
    done
    for t in async async-signed async-backlog blocking blocking-signed blocking-backlog; do
        row "emit p99 (µs), $t, $size B" "$(num "$t-$size" emit_ns_p99 1000)" "<=" 20
    done
    row "emit p99 async / paused, $size B" \
        "$(ratio "$(num "async-$size" emit_ns_p99 1)" "$(num "async-paused-$size" emit_ns_p99 1)")" "<=" 1.1
    row "emit p99 blocking / paused, $size B" \
        "$(ratio "$(num "blocking-$size" emit_ns_p99 1)" "$(num "blocking-paused-$size" emit_ns_p99 1)")" "<=" 1.1
done
for t in async blocking; do
    row "TLS $t / wrk keep-alive" "$(ratio "$(rps "$t-tls")" "$(rps wrk-tls)")" ">=" 0.6 \
        "$(rate "$t-tls" wrk-tls)"
    row "TLS $t / new connection per request" "$(ratio "$(rps "$t-tls")" "$(rps wrk-tls-close)")" \
        ">=" 9 "$(rate "$t-tls" wrk-tls-close)"
done
echo
echo "raw results: $out"
