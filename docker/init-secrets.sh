#!/bin/sh
# The one-shot `secrets` service (runs as root): makes what is missing in the
# secrets volume, once: MySQL's root password, a password per service user
# (each service of services/list), and accounts' Ed25519 JWT keys
# (pl-accounts keygen). Each file is readable only by who needs it: uid 999
# is mysql in the official MariaDB and MySQL images (and in docker/mariadb/),
# 10001 is pilotlight in ours. To bring your own, put the files in the
# volume first.
set -eu
list=${PL_SERVICES_FILE:-/usr/share/pilotlight/services/list}
dir=${PL_SECRETS_DIR:-/run/pilotlight/secrets}
mkdir -p "$dir"
umask 077
rand() { head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
for name in mysql_root $(sed 's/^/db_/' "$list"); do
  f=$dir/$name.password
  if [ ! -s "$f" ]; then
    rand >"$f.tmp" && mv "$f.tmp" "$f"
    echo "init-secrets: made $f"
  fi
done
if [ ! -s "$dir/jwt_signing.key" ] || [ ! -s "$dir/jwt_public.keys" ]; then
  pl-accounts keygen "$dir/jwt_signing.key" "$dir/jwt_public.keys" >/dev/null
  echo "init-secrets: made the JWT keys"
fi
chown 999:10001 "$dir/mysql_root.password" && chmod 0440 "$dir/mysql_root.password"
chown 10001:10001 "$dir"/db_*.password "$dir/jwt_signing.key" && chmod 0400 "$dir"/db_*.password "$dir/jwt_signing.key"
chmod 0444 "$dir/jwt_public.keys"
chmod 0755 "$dir"
