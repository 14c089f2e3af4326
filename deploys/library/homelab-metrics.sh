#!/bin/sh
# homelab-metrics: what Prometheus cannot read from the exporters, written for the node exporter's
# textfile collector. Installed by homelab-pyinfra (deploys/monitoring.py) as
# /usr/local/sbin/homelab-metrics and run every 15 s by homelab-metrics.timer.
#
#   homelab-metrics COLD_STORAGE_PATH METRICS_FOLDER BACKUP_STATE_FILE
#
# Writes METRICS_FOLDER/homelab.prom (atomically: a temporary file renamed into place):
#   homelab_container_running{name}    1 while Docker runs the container, 0 when it exists but does not
#   homelab_container_unhealthy{name}  1 while it runs and Docker's health check calls it unhealthy
#   homelab_container_restarts{name}   Docker's restart count of the container
#   homelab_cold_storage_avail_bytes   free bytes of the filesystem holding the cold-storage path
#   homelab_backup_last_success_timestamp_seconds   the last successful backup (when there was one)
# A part that cannot be read is left out (Docker down: no container lines; the alert rules notice the
# expected containers missing).
set -u
cold=$1
folder=$2
backup_state=$3
out="$folder/homelab.prom"
tmp="$folder/.homelab.prom.$$"
umask 022
mkdir -p "$folder"
trap 'rm -f "$tmp"' EXIT
{
    ids=$(docker ps --all --quiet --no-trunc 2>/dev/null)
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086  # one argument per container id
        docker inspect --format \
            '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}}' \
            $ids 2>/dev/null | awk '
            NF == 4 {
                name = substr($1, 2); gsub(/["\\]/, "", name)
                running[name] = ($2 == "running") ? 1 : 0
                unhealthy[name] = ($2 == "running" && $3 == "unhealthy") ? 1 : 0  # a stopped one is down
                restarts[name] = $4
            }
            END {
                print "# HELP homelab_container_running Whether Docker runs the container (1) or not (0)."
                print "# TYPE homelab_container_running gauge"
                for (n in running) printf "homelab_container_running{name=\"%s\"} %d\n", n, running[n]
                print "# HELP homelab_container_unhealthy Whether Docker calls the container unhealthy."
                print "# TYPE homelab_container_unhealthy gauge"
                for (n in unhealthy) printf "homelab_container_unhealthy{name=\"%s\"} %d\n", n, unhealthy[n]
                print "# HELP homelab_container_restarts Docker restart count of the container."
                print "# TYPE homelab_container_restarts gauge"
                for (n in restarts) printf "homelab_container_restarts{name=\"%s\"} %d\n", n, restarts[n]
            }'
    fi
    avail=$(df -P -B1 "$cold" 2>/dev/null | awk 'NR == 2 { print $4 }')
    if [ -n "$avail" ]; then
        echo "# HELP homelab_cold_storage_avail_bytes Free bytes of the filesystem holding the cold-storage path."
        echo "# TYPE homelab_cold_storage_avail_bytes gauge"
        echo "homelab_cold_storage_avail_bytes $avail"
    fi
    last=$(cat "$backup_state" 2>/dev/null)
    case "$last" in
        '' | *[!0-9]*) ;;
        *)
            echo "# HELP homelab_backup_last_success_timestamp_seconds The last successful backup (unix time)."
            echo "# TYPE homelab_backup_last_success_timestamp_seconds gauge"
            echo "homelab_backup_last_success_timestamp_seconds $last"
            ;;
    esac
} >"$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
