#!/bin/sh
# nginx/self-signed.sh CERT KEY: a self-signed TLS certificate for localhost
# (EC P-256, 825 days), made once: nothing is done when both files exist.
# For the local stack (./pilotlight, into $PL_VAR/secrets) and the compose
# nginx container (into its tls volume) alike. openssl's output is shown only
# when it fails.
set -eu
cert=${1:?usage: self-signed.sh CERT KEY}
key=${2:?usage: self-signed.sh CERT KEY}
[ -s "$cert" ] && [ -s "$key" ] && exit 0
mkdir -p "$(dirname -- "$cert")" "$(dirname -- "$key")"
umask 077
if ! out=$(openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -days 825 -subj "/CN=localhost/O=Pilotlight self-signed" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
  -keyout "$key.tmp" -out "$cert.tmp" 2>&1); then
  printf '%s\n' "$out" >&2
  echo "self-signed.sh: openssl could not make the TLS certificate" >&2
  exit 1
fi
chmod 0644 "$cert.tmp"
mv "$key.tmp" "$key"
mv "$cert.tmp" "$cert"
