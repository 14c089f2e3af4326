"""The cold-storage folder that exists before the deploy keeps its owner and mode; the data folders
beneath it get their managed owners and modes."""

from __future__ import annotations

from harness import DEBIAN_12, plan

ROOT_OP = "Cold storage | Cold storage /cold-storage (created if missing, an existing one left as it is)"


def host(root_line: str) -> dict:
    return {
        "ls -pdL *-release": DEBIAN_12,
        "uname -m": "x86_64",
        "stat -c 'dir %U %G %a %u %g %n'": [
            root_line,
            "missing /cold-storage/services/nginx-proxy/data",
            "missing /cold-storage/services/nginx-proxy/certificates/letsencrypt",
        ],
    }


def test_an_existing_cold_storage_folder_is_never_chowned_or_chmodded():
    ops = plan("deploys/nginx.py", host("dir me users 700 1000 100 /cold-storage"))
    assert ops[ROOT_OP] == []
    storage = [c for name, commands in ops.items() if name.startswith("Cold storage | ") for c in commands]
    assert not [c for c in storage if c.endswith(" /cold-storage")], storage
    assert "mkdir -p /cold-storage/services/nginx-proxy/data" in storage


def test_a_missing_cold_storage_folder_is_created_root_owned():
    ops = plan("deploys/nginx.py", host("missing /cold-storage"))
    assert ops[ROOT_OP] == [
        "mkdir -p /cold-storage", "chown root:root /cold-storage", "chmod 755 /cold-storage"]
