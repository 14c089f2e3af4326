"""Where the lab keeps its state: `.lab/` at the repository root (git-ignored)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("LAB_STATE_DIR", ROOT / ".lab"))
CACHE_DIR = STATE_DIR / "cache"
HOSTS_FILE = STATE_DIR / "hosts.json"
KEY_FILE = STATE_DIR / "id_ed25519"
REGISTRY_DIR = STATE_DIR / "registry"  # the lab registry's CA and server certificate (lab/registry.py)


def ensure_dirs() -> None:
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)


def load_hosts() -> list[dict]:
    if not HOSTS_FILE.exists():
        return []
    return json.loads(HOSTS_FILE.read_text())["hosts"]


def load_world() -> dict | None:
    """The world stand-in ({"name", "address", "gateway", "registry_port"}) as `up` recorded it, or None."""
    if not HOSTS_FILE.exists():
        return None
    return json.loads(HOSTS_FILE.read_text()).get("world")


def save_hosts(hosts: list[dict], world: dict | None = None) -> None:
    ensure_dirs()
    tmp = HOSTS_FILE.with_suffix(".part")
    tmp.write_text(json.dumps({"hosts": hosts, "world": world}, indent=2) + "\n")
    tmp.replace(HOSTS_FILE)


@contextlib.contextmanager
def locked():
    """One `up`/`down` at a time (e.g. two test sessions starting together)."""
    ensure_dirs()
    with (STATE_DIR / "lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
