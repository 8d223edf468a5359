#!/usr/bin/env bash
# What payload templates and ed25519 signatures cost: deskhook bench against nginx on
# loopback, the same events delivered as the format's JSON, through the slack preset, and
# through a CRM-shaped template of one's own, unsigned, HMAC-signed and ed25519-signed, side
# by side in one run (issue 15's target: templated delivery at least 0.8x untemplated).
#
#   benches/templates.sh
#
# What it does:
#   1. installs nginx with apt-get if it is missing (root only);
#   2. builds `deskhook` (cargo build --release -p deskhook-cli) and makes an ed25519 key
#      with `deskhook secret new --ed25519`;
#   3. starts nginx on 127.0.0.1:$PORT (benches/start-nginx.sh: one worker, 204 for
#      everything, keep-alive), stopped on exit whatever happens;
#   4. for each transport in $TRANSPORTS, REPEAT rounds, each round running every
#      configuration once (rounds interleave, so that a slow spell of the machine does not
#      fall on one configuration only): plain, slack, crm, crm-fields, hmac, ed25519,
#      slack+ed25519, and plain and slack to 100 endpoints of one tenant (EVENTS/50 events,
#      each delivered to all 100: endpoints with the same preset share one render per event);
#   5. prints per configuration the median requests/s, CPU µs per delivery (all, and user:
#      deskhook's own work without the kernel's sockets), and the ratio to the plain run of
#      its transport (plain-x100 for the x100 runs), with the target's verdict for the
#      templated runs and the lowest and highest ratio of a single round to that round's
#      plain run (how much the machine moved).
#
# Everything goes to 127.0.0.1 only. Settings (environment): PORT=18080 EVENTS=100000
# CONCURRENCY=16 BODY_SIZE=1024 TRANSPORTS="async blocking" REPEAT=3
# CONFIGS="plain slack crm crm-fields hmac ed25519 slack-ed25519 plain-x100 slack-x100"
# (plain first, and plain-x100 before slack-x100: the ratios are to them).
# Raw output in target/bench/templates/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
PORT="${PORT:-18080}"
EVENTS="${EVENTS:-100000}"
CONCURRENCY="${CONCURRENCY:-16}"
BODY_SIZE="${BODY_SIZE:-1024}"
TRANSPORTS="${TRANSPORTS:-async blocking}"
REPEAT="${REPEAT:-3}"
HMAC="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL="http://127.0.0.1:$PORT/"
# A CRM's own shape: a few typed fields, the comments as a list, the raw event inside.
CRM='{"external_id": "{{ ticket }}", "title": "{{ subject }}", "what": "{{ label }}", "by": "{{ author }}", "comments": {{ event.ticket.comments|default([])|map(attribute="text")|list|tojson }}, "event": {{ event|tojson }}}'
# The same CRM fed typed fields only, as a CRM's create-ticket API takes them (no raw event).
CRM_FIELDS='{"external_id": "{{ ticket }}", "title": "{{ subject }}", "description": "{{ text }}", "what": "{{ label }}", "by": "{{ author }}", "status": "{{ event.ticket.status }}", "priority": "{{ event.ticket.prio }}", "deadline": "{{ event.ticket.deadline_time }}"}'
out="$root/target/bench/templates"
mkdir -p "$out"
rm -f "$out"/*.json

say() { printf '== %s\n' "$*" >&2; }

if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "templates.sh: nginx is missing; run as root or: sudo apt-get install -y nginx" >&2
        exit 1
    fi
    say "installing nginx"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
    # The package starts and enables a system nginx on port 80 of every interface where
    # there is an init system; the benchmark runs its own on loopback, so turn that one off.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now nginx >/dev/null 2>&1 || true
    fi
fi

say "building deskhook (release)"
(cd "$root" && cargo build --release -q -p deskhook-cli)
deskhook="$root/target/release/deskhook"
ED25519="$("$deskhook" secret new --ed25519 2>/dev/null | head -n1)"

trap '"$here/stop-nginx.sh" "$PORT" >/dev/null 2>&1 || true' EXIT
"$here/start-nginx.sh" "$PORT" >&2
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"

field() { # field NAME FILE: a number (or null) from a one-line JSON report
    { grep -o "\"$1\":[^,}]*" "$2" || true; } | head -n1 | cut -d: -f2
}
read -r -a configs <<< "${CONFIGS:-plain slack crm crm-fields hmac ed25519 slack-ed25519 plain-x100 slack-x100}"
args_of() { # args_of CONFIG: the bench flags of a configuration
    case "$1" in
        plain) ;;
        slack) printf '%s\n' --template slack ;;
        crm) printf '%s\n' --template "$CRM" ;;
        crm-fields) printf '%s\n' --template "$CRM_FIELDS" ;;
        hmac) printf '%s\n' --secret "$HMAC" ;;
        ed25519) printf '%s\n' --secret "$ED25519" ;;
        slack-ed25519) printf '%s\n' --template slack --secret "$ED25519" ;;
        # 100 endpoints of one tenant, as many tenants' chat hooks: each event goes to all.
        plain-x100) printf '%s\n' --endpoints 100 --tenants 1 ;;
        slack-x100) printf '%s\n' --endpoints 100 --tenants 1 --template slack ;;
    esac
}
events_of() { # events_of CONFIG: x100 configurations make 100 deliveries an event
    case "$1" in
        *-x100) echo $((EVENTS / 50)) ;;
        *) echo "$EVENTS" ;;
    esac
}
for transport in $TRANSPORTS; do
    for round in $(seq 1 "$REPEAT"); do
        for config in "${configs[@]}"; do
            mapfile -t extra < <(args_of "$config")
            name="$transport-$config"
            say "deskhook bench $name (run $round of $REPEAT)"
            "$deskhook" bench --url "$URL" --events "$(events_of "$config")" --body-size "$BODY_SIZE" \
                --concurrency "$CONCURRENCY" --transport "$transport" --allow-private \
                --max-queued-bytes 4294967296 "${extra[@]}" > "$out/$name.$round.json" \
                || say "deskhook bench $name did not deliver everything"
            cat "$out/$name.$round.json" >&2
        done
    done
    for config in "${configs[@]}"; do
        name="$transport-$config"
        best="$(for f in "$out/$name".[0-9]*.json; do
            echo "$(field events_per_sec "$f") $f"
        done | sort -n | awk -v n="$REPEAT" 'NR == int((n + 1) / 2) { print $2 }')"
        cp "$best" "$out/$name.json"
    done
done

echo
echo "payload templates and signatures: $EVENTS events of $BODY_SIZE bytes, $CONCURRENCY in flight,"
echo "nginx (one worker) on 127.0.0.1 ($(nproc) cores, load average before: $load_before;"
echo "median of $REPEAT runs each; ratio: to the plain run of the same transport)"
for transport in $TRANSPORTS; do
    echo
    printf '%-24s %11s %9s %10s %7s %8s  %s\n' "$transport" "requests/s" "CPU µs/r" "user µs/r" \
        "ratio" "target" "rounds"
    plain="$(field events_per_sec "$out/$transport-plain.json")"
    for config in "${configs[@]}"; do
        f="$out/$transport-$config.json"
        rps="$(field events_per_sec "$f")"
        cpu="$(field cpu_us_per_delivery "$f")"
        user="$(field cpu_user_us_per_delivery "$f")"
        base="$plain"
        reference=plain
        if [[ "$config" == *-x100 ]]; then
            base="$(field events_per_sec "$out/$transport-plain-x100.json")"
            reference=plain-x100
        fi
        ratio="$(awk -v a="$rps" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
        # Each round's ratio to its own reference run, lowest and highest: the noise.
        rounds="$(for round in $(seq 1 "$REPEAT"); do
            a="$(field events_per_sec "$out/$transport-$config.$round.json")"
            b="$(field events_per_sec "$out/$transport-$reference.$round.json")"
            awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f\n", a / b }'
        done | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s-%s", lo, hi }')"
        target="-"
        case "$config" in
            slack|crm|crm-fields|slack-x100) target="$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8 ? "met" : "MISSED") }')" ;;
        esac
        printf '%-24s %11s %9s %10s %7s %8s  %s\n' "$config" "$rps" "$cpu" "$user" "$ratio" "$target" \
            "$rounds"
    done
done
