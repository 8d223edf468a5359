#!/usr/bin/env bash
# examples/serve_from_curl.sh
#
# A helpdesk not written in Rust (Zenlix is PHP) sending its events to `deskhook serve` with
# curl: what its `exec("curl …")` or PHP's curl_* calls do, in shell. Offline: the daemon,
# the receiver and the requests all stay on 127.0.0.1, and everything started is stopped.
#
# It builds deskhook, starts `deskhook listen` (a receiver that verifies signatures) and
# `deskhook serve` with a spool and a token, adds an endpoint for company "acme" through the
# admin API, posts an event twice with the same Idempotency-Key (accepted once) and a body
# that is no event (refused with a problem document), shows what the receiver got and what
# the attempt log says, and stops.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/deskhook-serve-example.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# DESKHOOK_BIN names a deskhook built already (the test that runs this example gives its
# own); else it is built here.
if [ -n "${DESKHOOK_BIN:-}" ]; then
    deskhook="$DESKHOOK_BIN"
else
    (cd "$root" && cargo build -q -p deskhook-cli)
    # Where cargo put it, CARGO_TARGET_DIR or build.target-dir included.
    target="$(cd "$root" && cargo metadata -q --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    deskhook="$target/debug/deskhook"
fi

# Waits up to 20 s for the command "$2…" to succeed; says what it waited for ($1) and stops
# the example if it never does (a process that died, a request that never came).
wait_for() {
    local what="$1"
    shift
    for _ in $(seq 400); do
        if "$@"; then return 0; fi
        sleep 0.05
    done
    echo "serve_from_curl: gave up waiting for $what" >&2
    exit 1
}

# The first `n` bytes of a reply, read whole first (a pipe to head would cut curl off).
first_bytes() {
    local n="$1"
    shift
    curl -sS "$@" -o "$work/reply"
    head -c "$n" "$work/reply"
}
secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# The receiver: a CRM's webhook endpoint, on a free loopback port.
"$deskhook" listen --addr 127.0.0.1:0 --secret "$secret" > "$work/listen.out" &
pids+=($!)
wait_for "the receiver to listen" grep -q '^listening on ' "$work/listen.out"
receiver="$(sed -n 's/^listening on //p' "$work/listen.out")"

# The daemon: no endpoint in its config; they come through the API. The token is what the
# helpdesk sends as a bearer (and what an admin types on the console's login page).
# --console-allow-private only because the receiver here is on 127.0.0.1: it lets the API
# add an endpoint with "allow_private" (refused by default: a tenant's admin could otherwise
# point deskhook at the server's own networks).
export DESKHOOK_TOKEN="$(head -c 24 /dev/urandom | base64)"
: > "$work/deskhook.toml"
"$deskhook" serve --config "$work/deskhook.toml" --spool "$work/spool" \
    --listen 127.0.0.1:0 --grace 2s --console-allow-private > "$work/serve.out" &
pids+=($!)
wait_for "the daemon to listen" grep -q '^listening on ' "$work/serve.out"
daemon="$(sed -n 's/^listening on //p' "$work/serve.out" | sed 's:/$::')"
echo "deskhook serve: $daemon (console at $daemon/ , log in with the token)"

auth=(-H "Authorization: Bearer $DESKHOOK_TOKEN")

echo "== an admin of company acme adds its CRM's endpoint (POST /api/v1/endpoints)"
first_bytes 160 --fail-with-body "${auth[@]}" -H 'Content-Type: application/json' \
    "$daemon/api/v1/endpoints" \
    --data-binary "{\"name\": \"acme-crm\", \"url\": \"$receiver\", \"tenant\": \"acme\",
                    \"secrets\": [\"$secret\"], \"actions\": [\"create\", \"comment\"],
                    \"allow_private\": true}"
echo " …"

echo "== the helpdesk posts a ticket event, as PHP's curl would (POST /v1/events)"
"$deskhook" render --action create > "$work/create.json"
for attempt in 1 2; do
    # The second post is the helpdesk retrying after a timeout: same Idempotency-Key,
    # accepted once.
    curl -sS "${auth[@]}" -H 'Content-Type: application/json' \
        -H 'Deskhook-Tenant: acme' -H 'Idempotency-Key: ticket-E3XK-create' \
        --data-binary @"$work/create.json" "$daemon/v1/events"
    echo
done

echo "== a body that is no event is refused with a problem document naming what is wrong"
curl -sS "${auth[@]}" --data-binary '{"subject": "hello"}' "$daemon/v1/events"
echo

echo "== the receiver verified and got it once"
wait_for "the receiver to verify the event" grep -q '^verified' "$work/listen.out"
grep '^verified' "$work/listen.out"

echo "== the attempt log, as the console shows it (GET /api/v1/attempts?endpoint=acme-crm)"
first_bytes 300 "${auth[@]}" "$daemon/api/v1/attempts?endpoint=acme-crm"
echo " …"
