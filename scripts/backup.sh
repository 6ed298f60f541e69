# scripts/backup.sh: backup and restore of the stack's data with MariaDB's
# own tools: every service's schema (mariadb-dump --single-transaction: one
# consistent snapshot of all of them while the stack serves) and the token
# keys (so that tokens issued before the backup still verify after a
# restore). The DB users are not in it: migrations make them again from this
# stack's secrets. One file, a gzipped tar:
#   manifest.json   format, time, commit, each service's schema and migration
#                   version, the SHA-256 of every other member
#   databases.sql   the dump
#   keys/           jwt_signing.key, jwt_public.keys
# restore refuses a damaged file, and one from a newer schema than this
# checkout's migrations, before it touches anything.
# shellcheck shell=bash

readonly BACKUP_FORMAT=1

# svc_schema SVC: the service's schema (PL_<SVC>_DB_NAME, PL_DB_NAME, its name).
svc_schema() {
  local var
  var=PL_$(tr '[:lower:]' '[:upper:]' <<<"$1")_DB_NAME
  printf '%s\n' "${!var:-${PL_DB_NAME:-$1}}"
}

# db_sql STATEMENT: one value from MariaDB (as root, over the socket).
db_sql() {
  mariadb --no-defaults --socket="$DB_SOCKET" -u root --batch --skip-column-names -e "$1"
}

# migrations_max SVC: the highest migration version this checkout has for it.
migrations_max() {
  local f v max=0
  for f in "$PL_MIGRATIONS_DIR/$1"/[0-9]*_*.sql; do
    [[ -e $f ]] || continue
    v=${f##*/}
    v=$((10#${v%%_*}))
    ((v > max)) && max=$v
  done
  printf '%s\n' "$max"
}

# backup_make FILE: the backup, written to FILE.tmp and renamed (mode 0600:
# it holds the signing key). An existing FILE is refused: a backup is never
# written over. Taken while the stack serves; on a stopped stack (after
# `down`: nothing can write meanwhile, the last backup before a move) MariaDB
# is started for it alone and stopped again after.
backup_make() {
  local file=$1 tmp svc schema version schemas=() started=$SECONDS manifest_services='{}' files='{}' f sum
  [[ ! -e $file && ! -L $file ]] || die "$file exists: name another file or a directory (a backup is never written over)"
  mkdir -p -- "$(dirname -- "$file")" "$PL_VAR/tmp" || die "cannot make the directory of $file"
  tmp=$(mktemp -d "$PL_VAR/tmp/backup.XXXXXX")
  local clean
  clean="rm -rf -- $(printf '%q %q' "$tmp" "$file.tmp")"
  # shellcheck disable=SC2064 # the paths are fixed now
  trap "$clean" EXIT
  if ! db_ping; then
    [[ -d $DATADIR/mysql ]] || die "this stack has no data in $DATADIR to back up"
    ! proc_pid "$RUN/mysqld.pid" "$MARIADBD" >/dev/null || die "MariaDB runs but does not answer on $DB_SOCKET"
    say "MariaDB is not running: starting it for the backup alone (stopped again after)"
    # stopped again however this ends (an error, an interrupt)
    # shellcheck disable=SC2064
    trap "$clean; db_stop" EXIT
    trap 'exit 130' INT TERM HUP
    db_start
  fi
  for svc in "${SERVICES[@]}"; do
    schema=$(svc_schema "$svc")
    version=$(db_sql "SELECT COALESCE(MAX(version), 0) FROM \`$schema\`.schema_migrations") ||
      die "$svc: no schema $schema to back up"
    schemas+=("$schema")
    manifest_services=$(jq -c --arg svc "$svc" --arg schema "$schema" --argjson v "$version" \
      '. + {($svc): {schema: $schema, migration: $v}}' <<<"$manifest_services")
  done
  mariadb-dump --no-defaults --socket="$DB_SOCKET" -u root --single-transaction --quick --routines --triggers \
    --events --hex-blob --default-character-set=utf8mb4 --databases "${schemas[@]}" \
    --result-file="$tmp/databases.sql" || die "mariadb-dump failed"
  mkdir -p "$tmp/keys"
  cp -- "$SECRETS/jwt_signing.key" "$SECRETS/jwt_public.keys" "$tmp/keys/" ||
    die "the token keys are missing from $SECRETS"
  for f in databases.sql keys/jwt_signing.key keys/jwt_public.keys; do
    sum=$(sha256sum <"$tmp/$f")
    files=$(jq -c --arg f "$f" --arg sum "${sum%% *}" '. + {($f): $sum}' <<<"$files")
  done
  jq -n --argjson format "$BACKUP_FORMAT" --arg created "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --arg commit "$(release_commit)" --arg mariadb "$(db_sql 'SELECT VERSION()')" \
    --argjson services "$manifest_services" --argjson files "$files" \
    '{format: $format, created_at: $created, commit: $commit, mariadb: $mariadb, services: $services,
      files: $files}' >"$tmp/manifest.json"
  (
    umask 077
    tar -C "$tmp" -czf "$file.tmp" manifest.json databases.sql keys
  ) || die "could not write $file"
  # never over a file that appeared meanwhile
  ln -- "$file.tmp" "$file" || die "could not write $file (did it appear meanwhile?)"
  rm -f -- "$file.tmp"
  say "backup: $file ($(du -h -- "$file" | cut -f1), ${#SERVICES[@]} schemas, $((SECONDS - started)) s)"
}

# backup_open FILE DIR: FILE unpacked into DIR and checked: a whole gzip and
# tar, a manifest this version reads, every member's checksum, and no
# schema newer than this checkout's migrations. Touches nothing else.
backup_open() {
  local file=$1 dir=$2 f want got svc version max
  [[ -f $file ]] || die "no backup file $file"
  if ! gzip -t -- "$file" 2>/dev/null || ! tar -C "$dir" -xzf "$file" 2>/dev/null; then
    die "$file is damaged (not a whole gzipped tar): nothing was restored"
  fi
  if [[ ! -f $dir/manifest.json || -L $dir/manifest.json ]] ||
    ! jq -e ".format == $BACKUP_FORMAT" "$dir/manifest.json" >/dev/null 2>&1; then
    die "$file has no manifest this version of Pilotlight reads: nothing was restored"
  fi
  # every member a backup has, each with its checksum; services: each a
  # service's name, its schema (not one of MariaDB's own) and a migration
  # version, all of them plain words and numbers (they reach SQL and bash)
  jq -e --arg name "$SERVICE_NAME_RE" '(.files | type == "object") and ([.files | keys[]] | sort == ["databases.sql", "keys/jwt_public.keys", "keys/jwt_signing.key"])
         and all(.files[]; type == "string" and test("^[0-9a-f]{64}$"))
         and (.services | type == "object" and length > 0)
         and all(.services | keys[]; test($name))
         and all(.services[]; (.schema | type == "string" and test("^[A-Za-z0-9_]{1,64}$")
                                and (ascii_downcase | IN("mysql", "information_schema", "performance_schema", "sys") | not))
                              and (.migration | type == "number" and . >= 0 and . < 1000000000 and floor == .))' \
    "$dir/manifest.json" >/dev/null 2>&1 ||
    die "$file's manifest does not list databases.sql, both keys and each service's schema and migration: nothing was restored"
  # nothing else: no other file, link, directory or device (tar refused ../ and absolute names already)
  f=$(cd -- "$dir" && find . -mindepth 1 \( \( ! -type d ! -path ./manifest.json ! -path ./databases.sql \
    ! -path ./keys/jwt_signing.key ! -path ./keys/jwt_public.keys \) -o \( -type d ! -path ./keys \) \) -print -quit)
  [[ -z $f ]] || die "$file holds ${f#./}, which a backup does not: nothing was restored"
  while read -r f want; do
    [[ -f $dir/$f && ! -L $dir/$f ]] || die "$file lacks $f (as a plain file): nothing was restored"
    got=$(sha256sum <"$dir/$f")
    [[ ${got%% *} == "$want" ]] || die "$f in $file does not match its checksum: nothing was restored"
  done < <(jq -r '.files | to_entries[] | "\(.key) \(.value)"' "$dir/manifest.json")
  while read -r svc version; do
    [[ " ${SERVICES[*]} " == *" $svc "* ]] || die "$file holds service $svc, which this checkout does not have"
    [[ $version =~ ^[0-9]{1,9}$ ]] || die "$file's manifest gives $svc no migration number: nothing was restored"
    max=$(migrations_max "$svc")
    ((10#$version <= max)) ||
      die "$file is from a newer schema of $svc (migration $version; this checkout has up to $max): update Pilotlight first; nothing was restored"
  done < <(jq -r '.services | to_entries[] | "\(.key) \(.value.migration)"' "$dir/manifest.json")
}

# backup_unpack FILE DIR: FILE checked as restore checks it, then its
# members (manifest.json, databases.sql, keys/) left in DIR, a new or empty
# directory (mode 0700: the signing key): for loading into a database other
# than this stack's, such as a cluster (docs/scaling-out.md). Touches no
# stack; a file that fails a check leaves DIR as it was.
backup_unpack() {
  local file=$1 dir=${2%/} tmp
  case ${dir##*/} in
  '' | . | ..) die "name a directory to make (or an empty one), not '$2'" ;;
  esac
  [[ ! -L $dir ]] || die "$dir is a symbolic link: name the directory itself"
  [[ ! -e $dir || -d $dir ]] || die "$dir exists and is not a directory"
  [[ ! -d $dir ]] || [[ -z $(ls -A -- "$dir") ]] || die "$dir is not empty"
  [[ -d $(dirname -- "$dir") ]] || die "$(dirname -- "$dir") does not exist"
  tmp=$(mktemp -d "$(dirname -- "$dir")/.pl-unpack.XXXXXX") || die "cannot write beside $dir"
  # shellcheck disable=SC2064 # the path is fixed now
  trap "rm -rf -- $(printf %q "$tmp")" EXIT
  backup_open "$file" "$tmp"
  chmod -R go-rwx -- "$tmp" # (the signing key; the dump's password hashes)
  [[ ! -d $dir ]] || rmdir -- "$dir"
  mv -T -- "$tmp" "$dir" || die "could not move the unpacked backup to $dir"
  say "unpacked $file (made $(jq -r .created_at "$dir/manifest.json"); schemas $(jq -r '[.services[].schema] | join(", ")' "$dir/manifest.json")) into $dir: databases.sql, keys/, manifest.json"
}

# backup_restore FILE: onto a stopped or fresh stack (var/ wiped): MariaDB
# is started (initialised if need be), each schema in the backup replaced by
# its copy, the token keys put back, then the migrations run (they make the
# DB users again from this stack's secrets, and bring an older backup up to
# date). The pools and nginx are left for `up`.
backup_restore() {
  local file=$1 tmp svc inst f started=$SECONDS
  [[ -f $file ]] || die "no backup file $file"
  file=$(realpath -- "$file")
  make_dirs
  mkdir -p "$PL_VAR/tmp"
  tmp=$(mktemp -d "$PL_VAR/tmp/restore.XXXXXX")
  # shellcheck disable=SC2064 # the path is fixed now
  trap "rm -rf -- $(printf %q "$tmp")" EXIT
  backup_open "$file" "$tmp"
  for svc in "${SERVICES[@]}"; do
    for inst in $(present_instances "$svc"); do
      ! pool_running "$inst" >/dev/null || die "the $inst pool runs: ./pilotlight down first (restore replaces what it serves)"
    done
  done
  ! nginx_pid >/dev/null || die "nginx runs: ./pilotlight down first"
  db_start
  while read -r svc; do
    db_sql "DROP DATABASE IF EXISTS \`$(jq -r --arg s "$svc" '.services[$s].schema' "$tmp/manifest.json")\`" ||
      die "could not drop $svc's schema"
  done < <(jq -r '.services | keys[]' "$tmp/manifest.json")
  mariadb --no-defaults --socket="$DB_SOCKET" -u root <"$tmp/databases.sql" ||
    die "loading the dump failed: run restore again (it starts over from the file)"
  (
    umask 077
    for f in jwt_signing.key jwt_public.keys; do
      [[ ! -f $SECRETS/$f ]] || cp -p -- "$SECRETS/$f" "$SECRETS/$f.before-restore"
      cp -- "$tmp/keys/$f" "$SECRETS/$f.tmp"
      mv -- "$SECRETS/$f.tmp" "$SECRETS/$f"
    done
    chmod 0644 "$SECRETS/jwt_public.keys"
  )
  migrate
  say "restored $file (made $(jq -r .created_at "$tmp/manifest.json"), $((SECONDS - started)) s): ./pilotlight up serves it"
}
