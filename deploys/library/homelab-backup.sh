#!/bin/bash
# homelab-backup: restic backups of the homelab's service data, one snapshot per service.
# Installed by homelab-pyinfra (deploys/backup.py) as /usr/local/sbin/homelab-backup; edits are replaced.
#
#   homelab-backup init                     create the repository unless it exists (wrong password: exit 3)
#   homelab-backup run                      back up every service in the sources file, prune, mark success
#   homelab-backup check                    restic check (the weekly timer)
#   homelab-backup restore [--snapshot ID] [--overwrite] SERVICE...
#   homelab-backup status                   the last success and check, as epoch seconds
#
# Configuration (written by the deploy):
#   $CONF_DIR/restic.env   (0600) RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE, RESTIC_CACHE_DIR,
#                          HOMELAB_SFTP_COMMAND (ssh with the backup key, for sftp: repositories)
#   $CONF_DIR/backup.conf  HOMELAB_BACKUP_HOST (the inventory name: the snapshots' host), KEEP_DAILY,
#                          KEEP_WEEKLY, KEEP_MONTHLY
#   $CONF_DIR/sources      `data SERVICE CLASS PATH` and `project SERVICE DIR` lines, from the catalog
# SQLite databases (found by their header) are copied with SQLite's online backup API into a staging
# folder and backed up from there; the live file and its -wal/-shm/-journal are left out.
set -euo pipefail
umask 077

CONF_DIR=${HOMELAB_BACKUP_CONF_DIR:-/etc/homelab/backup}
STATE_DIR=${HOMELAB_BACKUP_STATE_DIR:-/var/lib/homelab-backup}
STAGING="$STATE_DIR/staging"
ME=homelab-backup

log() { echo "$ME: $*"; }
die() {  # die CODE MESSAGE: one line a person can act on
    local code=$1
    shift
    echo "$ME: $*" >&2
    exit "$code"
}

load() {
    [ -r "$CONF_DIR/restic.env" ] || die 2 "$CONF_DIR/restic.env is missing: run deploys/backup.py first"
    [ -r "$CONF_DIR/sources" ] || die 2 "$CONF_DIR/sources is missing: run deploys/backup.py first"
    set -a
    # shellcheck source=/dev/null
    . "$CONF_DIR/restic.env"
    if [ -r "$CONF_DIR/backup.conf" ]; then
        # shellcheck source=/dev/null
        . "$CONF_DIR/backup.conf"
    fi
    set +a
    command -v restic >/dev/null 2>&1 || die 2 "restic is not installed: run deploys/backup.py"
    HOST=${HOMELAB_BACKUP_HOST:-$(hostname)}
    OPTS=()
    if [ -n "${HOMELAB_SFTP_COMMAND:-}" ]; then
        OPTS=(-o "sftp.command=$HOMELAB_SFTP_COMMAND")
    fi
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/lock"
    flock 9 || die 1 "cannot lock $STATE_DIR/lock"
}

r() { restic "${OPTS[@]}" "$@"; }

# the repository as it may be shown: without a password in a URL (rest:https://user:pass@host/)
shown_repository() { printf '%s' "${RESTIC_REPOSITORY:-?}" | sed -E 's#//([^/:@]*):[^/@]*@#//\1:***@#'; }

services() { awk '$1 == "data" { print $2 }' "$CONF_DIR/sources" | awk '!seen[$0]++'; }
paths_of() { awk -v s="$1" '$1 == "data" && $2 == s { print $4 }' "$CONF_DIR/sources"; }
classes_of() { awk -v s="$1" '$1 == "data" && $2 == s { print $3 }' "$CONF_DIR/sources" | awk '!seen[$0]++'; }
project_of() { awk -v s="$1" '$1 == "project" && $2 == s { print $3 }' "$CONF_DIR/sources"; }

is_sqlite() { [ "$(head -c 15 "$1" 2>/dev/null)" = "SQLite format 3" ]; }

# -- init -----------------------------------------------------------------------------------------
cmd_init() {
    local out
    if out=$(r cat config 2>&1 >/dev/null); then
        log "repository $(shown_repository) exists and opens with the password"
        return 0
    fi
    case "$out" in
        *"wrong password"*)
            die 3 "the repository $(shown_repository) exists but refuses the password: set" \
                "HOMELAB_BACKUP_PASSWORD to the one it was made with (or choose another repository)" ;;
        *"unable to open config file"* | *"Is there a repository at the following location"*)
            out=$(r init 2>&1) || die 1 "restic init $(shown_repository) failed: $(printf '%s' "$out" | tail -n 1)"
            log "repository $(shown_repository) created" ;;
        *)
            die 1 "cannot open the repository $(shown_repository): $(printf '%s' "$out" | grep -m1 -i 'fatal' || printf '%s' "$out" | tail -n 1)" ;;
    esac
}

# -- run ------------------------------------------------------------------------------------------
backup_service() {
    local service=$1 path file dest found=() excludes=() tags=(--tag homelab --tag "service:$service")
    while IFS= read -r path; do
        [ -d "$path" ] && found+=("$path")
    done < <(paths_of "$service")
    if [ "${#found[@]}" -eq 0 ]; then
        log "$service: no data folder on this host yet: skipped"
        return 0
    fi
    if [ -z "$(find "${found[@]}" -mindepth 1 -print -quit)" ]; then
        # an empty snapshot would become the latest, and a restore would bring back nothing
        log "$service: its data folders are empty: skipped"
        return 0
    fi
    local stage="$STAGING/$service"
    rm -rf "$stage"
    mkdir -p "$stage"
    while IFS= read -r -d '' file; do
        is_sqlite "$file" || continue
        dest="$stage$file"
        mkdir -p "$(dirname "$dest")"
        # SQLite's online backup API: a consistent copy while the service keeps writing
        if ! sqlite3 -cmd ".timeout 30000" "$file" ".backup '$dest'" >/dev/null; then
            log "$service: sqlite3 could not copy $file"
            return 1
        fi
        if [ "$(sqlite3 "$dest" 'PRAGMA integrity_check;')" != "ok" ]; then
            log "$service: the copy of $file fails PRAGMA integrity_check"
            return 1
        fi
        chmod --reference="$file" "$dest" && chown --reference="$file" "$dest"
        excludes+=(--exclude "$file" --exclude "$file-wal" --exclude "$file-shm" --exclude "$file-journal")
    done < <(find "${found[@]}" -type f -size +0 -print0)
    while IFS= read -r class; do tags+=(--tag "class:$class"); done < <(classes_of "$service")
    log "$service: backing up ${found[*]}"
    if ! r backup --host "$HOST" "${tags[@]}" "${excludes[@]}" "${found[@]}" "$stage"; then
        log "$service: restic backup failed"
        return 1
    fi
}

cmd_run() {
    local service failed=()
    cmd_init >/dev/null
    for service in $(services); do
        backup_service "$service" || failed+=("$service")
    done
    if [ "${#failed[@]}" -gt 0 ]; then
        die 1 "backup FAILED for ${failed[*]} (see the lines above); the last success stays as it was"
    fi
    log "pruning: keep ${KEEP_DAILY:-7} daily, ${KEEP_WEEKLY:-4} weekly, ${KEEP_MONTHLY:-6} monthly per service"
    r forget --prune --host "$HOST" --tag homelab --group-by host,tags \
        --keep-daily "${KEEP_DAILY:-7}" --keep-weekly "${KEEP_WEEKLY:-4}" --keep-monthly "${KEEP_MONTHLY:-6}" \
        || die 1 "restic forget --prune failed; the snapshots are kept, the last success stays as it was"
    date +%s >"$STATE_DIR/last-success.tmp"
    chmod 644 "$STATE_DIR/last-success.tmp"
    mv "$STATE_DIR/last-success.tmp" "$STATE_DIR/last-success"
    log "backup done: $(services | tr '\n' ' ')"
}

# -- check ----------------------------------------------------------------------------------------
cmd_check() {
    r check || die 1 "restic check of $(shown_repository) FAILED (see above)"
    date +%s >"$STATE_DIR/last-check"
    chmod 644 "$STATE_DIR/last-check"
}

# -- restore --------------------------------------------------------------------------------------
compose_running() {  # the service's compose project has containers
    local dir=$1 service=$2
    [ -n "$dir" ] && [ -f "$dir/compose.yaml" ] && command -v docker >/dev/null 2>&1 \
        && [ -n "$(docker compose --project-directory "$dir" -p "$service" ps -q 2>/dev/null)" ]
}

restore_service() {
    local service=$1 snapshot=$2 overwrite=$3 stamp path dir running=0
    local scratch="$ROOT_DIR/.homelab-restore-$service"
    stamp=$(date +%Y%m%d-%H%M%S)
    dir=$(project_of "$service")
    if compose_running "$dir" "$service"; then
        running=1
        log "$service: stopping (docker compose down, volumes kept)"
        docker compose --project-directory "$dir" -p "$service" down
    fi
    rm -rf "$scratch"
    mkdir -p "$scratch"
    local filters=()
    [ "$snapshot" = latest ] && filters=(--host "$HOST" --tag "service:$service")
    log "$service: restoring snapshot $snapshot"
    r restore "$snapshot" "${filters[@]}" --target "$scratch" >/dev/null \
        || die 1 "$service: restic restore $snapshot failed (see above); its data is as it was"
    local restored=0
    while IFS= read -r path; do
        [ -e "$scratch$path" ] && restored=1
    done < <(paths_of "$service")
    if [ "$restored" -eq 0 ]; then
        rm -rf "$scratch"
        die 1 "$service: snapshot $snapshot holds none of its data folders; its data is as it was"
    fi
    while IFS= read -r path; do
        [ -e "$scratch$path" ] || continue
        if [ -d "$path" ] && [ -n "$(ls -A "$path")" ]; then
            [ "$overwrite" = 1 ] || die 4 "$service: $path is not empty (checked before, changed since)"
            mv "$path" "$path.before-restore-$stamp"
            log "$service: the data it replaces is kept in $path.before-restore-$stamp"
        elif [ -d "$path" ]; then
            rmdir "$path"
        fi
        # folders above the data folders (a fresh host has none) as the deploy makes them: 755
        (umask 022 && mkdir -p "$(dirname "$path")")
        mv "$scratch$path" "$path"
    done < <(paths_of "$service")
    # the consistent copies of the SQLite databases go back to where they were taken from
    local staged="$scratch$STAGING/$service"
    if [ -d "$staged" ]; then
        while IFS= read -r -d '' file; do
            local original=${file#"$staged"}
            rm -f "$original-wal" "$original-shm" "$original-journal"
            cp -a "$file" "$original"
        done < <(find "$staged" -type f -print0)
    fi
    rm -rf "$scratch"
    if [ "$running" -eq 1 ]; then
        log "$service: starting again"
        docker compose --project-directory "$dir" -p "$service" up -d
    fi
    log "$service: restored from $snapshot"
}

cmd_restore() {
    local snapshot=latest overwrite=0 wanted=() service path
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --snapshot) snapshot=$2; shift 2 ;;
            --overwrite) overwrite=1; shift ;;
            -*) die 2 "restore: unknown option $1" ;;
            *) wanted+=("$1"); shift ;;
        esac
    done
    [ "${#wanted[@]}" -gt 0 ] || mapfile -t wanted < <(services)
    ROOT_DIR=$(awk '$1 == "root" { print $2 }' "$CONF_DIR/sources")
    [ -n "$ROOT_DIR" ] || ROOT_DIR=$STATE_DIR
    # every check before anything is touched: a mistaken restore loses nothing
    for service in "${wanted[@]}"; do
        [ -n "$(paths_of "$service")" ] || die 2 "restore: $service has no backed-up data on this host"
        [ "$overwrite" = 1 ] && continue
        while IFS= read -r path; do
            if [ -d "$path" ] && [ -n "$(ls -A "$path")" ]; then
                die 4 "restore refused: $path ($service) is not empty; restore over it with --overwrite" \
                    "(deploys/restore.py: --data restore_overwrite=true); what it holds is then kept beside" \
                    "it as $path.before-restore-<time>"
            fi
        done < <(paths_of "$service")
    done
    for service in "${wanted[@]}"; do
        restore_service "$service" "$snapshot" "$overwrite"
    done
}

cmd_status() {
    echo "last-success $(cat "$STATE_DIR/last-success" 2>/dev/null || echo never)"
    echo "last-check $(cat "$STATE_DIR/last-check" 2>/dev/null || echo never)"
}

main() {
    local command=${1:-run}
    [ "$#" -gt 0 ] && shift
    case "$command" in
        init) load; cmd_init ;;
        run) load; cmd_run ;;
        check) load; cmd_check ;;
        restore) load; cmd_restore "$@" ;;
        status) cmd_status ;;
        *) die 2 "unknown command $command; expected init, run, check, restore or status" ;;
    esac
}

main "$@"
