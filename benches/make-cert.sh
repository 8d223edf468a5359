#!/usr/bin/env bash
# Makes a private CA and a certificate for 127.0.0.1 and localhost signed by it, both ECDSA
# P-256, with openssl, into DIR: ca.pem (what a client trusts: `deskhook bench --ca-file`),
# cert.pem and key.pem (what nginx serves: start-nginx.sh's TLS_CERT and TLS_KEY). Valid for
# a day; nothing is installed or trusted system-wide.
#
#   benches/make-cert.sh DIR
set -euo pipefail

dir="${1:?usage: make-cert.sh DIR}"
mkdir -p "$dir"
cd "$dir"
curve=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${curve[@]}" -keyout ca-key.pem -out ca.pem -days 1 \
    -subj "/CN=deskhook benchmark CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    2>/dev/null
openssl req "${curve[@]}" -keyout key.pem -out cert.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    > cert.ext
openssl x509 -req -in cert.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 1 \
    -extfile cert.ext -out cert.pem 2>/dev/null
rm -f cert.csr cert.ext ca.srl
echo "ca=$dir/ca.pem cert=$dir/cert.pem key=$dir/key.pem"
