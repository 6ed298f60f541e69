#!/usr/bin/env bash
# Entrypoint of the local mariadb:10.11 stand-in (docker/mariadb/Dockerfile):
# on an empty data directory, the official image's set-up, then the server.
# It honours the official image's variables (each MARIADB_* also as MYSQL_*,
# each password also as *_FILE):
#   MARIADB_ROOT_PASSWORD, or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1, or
#   MARIADB_RANDOM_ROOT_PASSWORD=1 (one is required); MARIADB_ROOT_HOST
#   (default %); MARIADB_DATABASE; MARIADB_USER and MARIADB_PASSWORD;
#   /docker-entrypoint-initdb.d/*.sql, *.sql.gz and *.sh, in name order.
# Like the official image, the set-up runs on a server that listens on no
# TCP port (--skip-networking), so a client that reaches port 3306 reaches
# the finished server. Arguments starting with - go to mariadbd.
set -euo pipefail

datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock

log() { printf 'entrypoint: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# env_var NAME: $MARIADB_NAME or $MYSQL_NAME, or the content of the file
# named by $MARIADB_NAME_FILE or $MYSQL_NAME_FILE; empty when none is set.
env_var() {
  local v f
  for v in "MARIADB_$1" "MYSQL_$1"; do
    f=${v}_FILE
    if [[ -n ${!v:-} && -n ${!f:-} ]]; then die "both $v and $f are set"; fi
    if [[ -n ${!f:-} ]]; then
      [[ -r ${!f} ]] || die "$f: cannot read ${!f}"
      cat -- "${!f}"
      return
    fi
    if [[ -n ${!v:-} ]]; then
      printf '%s' "${!v}"
      return
    fi
  done
}

# sql_str TEXT: TEXT as a quoted SQL string.
sql_str() {
  local s=${1//\\/\\\\}
  printf "'%s'" "${s//\'/\\\'}"
}

client() { mariadb --protocol=socket --socket="$socket" -uroot "$@"; }

# --user=mysql only as root: mariadb-install-db would chown the data
# directory and its PAM tool (not allowed to another user, nor on a
# read-only root), and mariadbd warns
as_mysql=()
((EUID != 0)) || as_mysql=(--user=mysql)

init_db() {
  local root_pw root_host db user pw f random=0
  root_pw=$(env_var ROOT_PASSWORD)
  root_host=$(env_var ROOT_HOST)
  : "${root_host:=%}"
  if [[ -z $root_pw ]]; then
    if [[ -n $(env_var RANDOM_ROOT_PASSWORD) ]]; then
      root_pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
      random=1
    elif [[ -z $(env_var ALLOW_EMPTY_ROOT_PASSWORD) && -z ${MYSQL_ALLOW_EMPTY_PASSWORD:-} ]]; then
      die "the database is not initialized and no root password option is set (MARIADB_ROOT_PASSWORD[_FILE], MARIADB_ALLOW_EMPTY_ROOT_PASSWORD or MARIADB_RANDOM_ROOT_PASSWORD)"
    fi
  fi
  log "initializing $datadir"
  mariadb-install-db "${as_mysql[@]}" --datadir="$datadir" --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve >/dev/null
  mariadbd "${as_mysql[@]}" --datadir="$datadir" --skip-networking --socket="$socket" "$@" &
  local pid=$! i
  for ((i = 0; i < 300; i++)); do
    client -e 'SELECT 1' >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || die "the set-up server stopped"
    sleep 0.1
  done
  client -e 'SELECT 1' >/dev/null || die "the set-up server did not answer in 30 s"
  {
    echo "SET @@SESSION.SQL_LOG_BIN=0;"
    # what mariadb-install-db made besides root@localhost goes, as in the
    # official image: root@$root_host below is the one way in over TCP
    echo "DROP USER IF EXISTS ''@'localhost', root@'127.0.0.1', root@'::1';"
    echo "EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@''', @@hostname, ''', ''''@''', @@hostname, '''');"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_str "$root_pw");"
    if [[ $root_host != localhost ]]; then
      echo "CREATE USER 'root'@$(sql_str "$root_host") IDENTIFIED BY $(sql_str "$root_pw");"
      echo "GRANT ALL ON *.* TO 'root'@$(sql_str "$root_host") WITH GRANT OPTION;"
    fi
    db=$(env_var DATABASE)
    user=$(env_var USER)
    pw=$(env_var PASSWORD)
    [[ -z $db ]] || echo "CREATE DATABASE IF NOT EXISTS \`${db//\`/\`\`}\`;"
    if [[ -n $user ]]; then
      echo "CREATE USER $(sql_str "$user")@'%' IDENTIFIED BY $(sql_str "$pw");"
      [[ -z $db ]] || echo "GRANT ALL ON \`${db//\`/\`\`}\`.* TO $(sql_str "$user")@'%';"
    fi
    echo "FLUSH PRIVILEGES;"
  } | client
  ((random == 0)) || log "GENERATED ROOT PASSWORD: $root_pw"
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
    *.sql) log "running $f"; MYSQL_PWD=$root_pw client <"$f" ;;
    *.sql.gz) log "running $f"; gzip -dc -- "$f" | MYSQL_PWD=$root_pw client ;;
    *.sh) log "running $f"; MYSQL_PWD=$root_pw bash "$f" ;;
    *) ;;
    esac
  done
  kill "$pid"
  wait "$pid" || die "the set-up server did not stop cleanly"
  log "initialized"
}

[[ ${1:-} != -* ]] || set -- mariadbd "$@"
if [[ ${1:-} == mariadbd || ${1:-} == mysqld ]]; then
  shift
  if [[ ! -d $datadir/mysql ]]; then
    # as root, the data directory becomes mysql's; as another user (a
    # Kubernetes securityContext: runAsUser 999, fsGroup 999) it must be
    # writable already, as with the official image
    ((EUID != 0)) || chown mysql:mysql "$datadir"
    init_db "$@"
  fi
  exec mariadbd "${as_mysql[@]}" --datadir="$datadir" "$@"
fi
exec "$@"
