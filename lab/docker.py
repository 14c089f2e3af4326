"""Thin helpers around the `docker` CLI of the machine running the lab."""

from __future__ import annotations

import subprocess
import sys


def log(msg: str) -> None:
    print(f"[lab] {msg}", file=sys.stderr, flush=True)


def docker(*args: str, check: bool = True, capture: bool = False,
           input: bytes | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `docker ARGS`; on failure raise SystemExit with docker's own message."""
    proc = subprocess.run(
        ["docker", *args], input=input, timeout=timeout,
        capture_output=capture, text=input is None,
    )
    if check and proc.returncode != 0:
        err = proc.stderr if capture else ""
        if isinstance(err, bytes):
            err = err.decode(errors="replace")
        raise SystemExit(f"docker {' '.join(args[:3])} ... failed ({proc.returncode}): {err.strip()}")
    return proc


def image_id(ref: str) -> str | None:
    proc = docker("image", "inspect", "--format", "{{.Id}}", ref, check=False, capture=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def engine_ok() -> bool:
    return docker("info", check=False, capture=True).returncode == 0
