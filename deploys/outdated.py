"""Which services run an image older than their registry now serves for the same tag. Changes nothing.

    pyinfra inventories/home.py deploys/outdated.py -y

Per host, one table: each service placed there, the tag its pin belongs to (compose.override.yaml),
the digest it runs, the digest its registry serves for that tag now (asked through the host's Docker
engine, nothing pulled), and what to do: `deploys/update.py` moves the pins whose tags have moved; a
changed image setting is applied by the next deploy. One read of the pins and one registry ask per
host, at prepare time; no operation.
"""

from __future__ import annotations

import click
from pyinfra import host

from deploys.library import context, service_steps
from deploys.library.catalog import CATALOG
from facts.compose import ImagePins
from facts.images import RegistryDigests
from facts.reads import read_fact

ctx = context.current()
directories = {service: str(CATALOG[service].project_dir) for service in ctx.services}
found = read_fact(ImagePins, directories=sorted(directories.values()), host=host) if directories else {}
pins = {service: found.get(directory) for service, directory in directories.items()}
tags = sorted({pin["image"] for pin in pins.values() if pin})
registry = read_fact(RegistryDigests, refs=tags, host=host) if tags else {}
text, _ = service_steps.outdated_report(host.name, ctx.settings, list(ctx.services), pins, registry)
click.echo("\n" + text + "\n", err=True)
