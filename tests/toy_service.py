"""A toy sixth service, declared the way the five are (test-only catalog entry): nothing but this
declaration is needed for it to be deployed, proxied, resolved and verified.

It runs the lab's Open WebUI stand-in image from the lab registry (an HTTP server on 8080 answering
/health), under its own name, data folder and subdomain.
"""

from __future__ import annotations

from deploys.library.catalog import CATALOG, GPU_GROUP, BackupClass, ServiceSpec, Volume
from lab.data import LAB_IMAGES

TOY = ServiceSpec(
    name="toy",
    image=LAB_IMAGES["open-webui"],  # LAB STAND-IN image
    group=GPU_GROUP,
    upstream_port=8080,
    subdomain="toy",
    volumes=(Volume("ai/toy/data", "/app/backend/data", BackupClass.LOW),),
    healthcheck=("CMD", "curl", "-fsS", "http://localhost:8080/health"),
    start_period="30s",
)


def register() -> None:
    """Add the toy to the catalog of this process (idempotent)."""
    CATALOG.setdefault(TOY.name, TOY)


def unregister() -> None:
    CATALOG.pop(TOY.name, None)
