#!/usr/bin/env bash
# Starts nginx on 127.0.0.1:PORT (default 18080) answering 204 to everything, with one worker
# process, keep-alive and no access log, from a prefix directory of its own (no writing to
# /etc). Installs nginx from Debian when it is missing and we are root.
#
#   benches/start-nginx.sh [PORT]   prints   url=http://127.0.0.1:PORT/ pid=N prefix=DIR
#   benches/stop-nginx.sh [PORT]    stops it (start records the prefix in
#                                   $TMPDIR/deskhook-nginx-PORT.prefix)
#
# Environment: NGINX_WORKERS (default 1), NGINX_PREFIX (default a new directory in $TMPDIR).
# With TLS_PORT, TLS_CERT and TLS_KEY (PEM files, such as benches/make-cert.sh makes), the
# same receiver also listens on 127.0.0.1:TLS_PORT over TLS (1.2 and 1.3, HTTP/1.1, a
# session cache and tickets for resumption).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${1:-${PORT:-18080}}"
workers="${NGINX_WORKERS:-1}"

nginx_bin="$(command -v nginx || true)"
[[ -z "$nginx_bin" && -x /usr/sbin/nginx ]] && nginx_bin=/usr/sbin/nginx
if [[ -z "$nginx_bin" ]]; then
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "start-nginx.sh: nginx is not installed; run as root or: sudo apt-get install -y nginx" >&2
        exit 1
    fi
    if [[ -z "${DESKHOOK_APT_UPDATED:-}" ]]; then
        apt-get update -qq
        export DESKHOOK_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
    # The package starts a system nginx on port 80 where there is an init system; this
    # benchmark runs its own, so stop that one if it is running (ignore failures).
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now nginx >/dev/null 2>&1 || true
    fi
    nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
fi

prefix="${NGINX_PREFIX:-$(mktemp -d "${TMPDIR:-/tmp}/deskhook-nginx.XXXXXX")}"
mkdir -p "$prefix"
sed -e "s|@PORT@|$port|g" -e "s|@PREFIX@|$prefix|g" -e "s|@WORKERS@|$workers|g" \
    "$here/nginx.conf" > "$prefix/nginx.conf"
if [[ -n "${TLS_PORT:-}" ]]; then
    cat > "$prefix/extra-tls.conf" <<EOF
server {
    listen 127.0.0.1:$TLS_PORT ssl backlog=4096;
    server_name localhost;
    ssl_certificate $TLS_CERT;
    ssl_certificate_key $TLS_KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:deskhook:10m;
    ssl_session_tickets on;
    location / {
        return 204;
    }
}
EOF
fi

# -p sets the prefix, -e the early error log (before the config's own is read): no /etc, no
# /var/log.
"$nginx_bin" -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf" -t -q
"$nginx_bin" -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf"

for _ in $(seq 1 50); do
    [[ -s "$prefix/nginx.pid" ]] && break
    sleep 0.1
done
pid="$(cat "$prefix/nginx.pid")"
echo "$prefix" > "${TMPDIR:-/tmp}/deskhook-nginx-$port.prefix"
# Wait until it answers.
for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
done
echo "url=http://127.0.0.1:$port/ pid=$pid prefix=$prefix"
