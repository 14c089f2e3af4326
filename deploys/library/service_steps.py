"""Service steps: the cold-storage tree, one compose project per service placed on the host, and
the containers of services no longer placed here taken down (their data stays)."""

from __future__ import annotations

from pyinfra.api import deploy

from deploys.library import openwebui_steps
from deploys.library.catalog import CATALOG, Service
from deploys.library.compose_files import data_dirs, env_file, generated_secrets, render_compose
from deploys.library.context import HostContext
from operations import compose, directories, secrets


@deploy("Cold storage")
def storage(ctx: HostContext, services: list[str]):
    """The data folders of these services (one read for all); existing contents are never touched.

    The cold-storage folder itself is created when missing; one that exists (a data disk's mount point,
    a folder the user made) keeps its owner and mode."""
    root = str(ctx.settings.cold_storage_path)
    directories.present(
        name=f"Cold storage {root} (created if missing, an existing one left as it is)",
        paths=[root],
        user="root",
        group="root",
        mode=755,
        keep_existing=True,
    )
    by_owner: dict[tuple[str, str], list[str]] = {}
    for service in services:
        for path, volume in data_dirs(ctx.settings, service):
            by_owner.setdefault((volume.owner, volume.mode), []).append(str(path))
    for (owner, mode), paths in by_owner.items():
        user, group = owner.split(":")
        directories.present(
            name=f"{', '.join(services)}: data folders ({owner}, {mode})",
            paths=paths,
            user=user,
            group=group,
            mode=int(mode),
        )


@deploy("Compose services")
def services(ctx: HostContext, candidates: list[str]):
    """One compose project per candidate, in the catalog's order: running where the plan places the
    service, taken down where it does not (``docker compose down``, never ``-v``: its data folders and
    project files stay, so placing it back brings it up on the same data); then one health wait for all
    that run here. Every host runs the same operations in the same order (pyinfra orders operations
    across hosts by the order they are called in; host-dependent branches would make a cycle)."""
    wanted = [service for service in candidates if service in ctx.services]
    for service in candidates:
        item = CATALOG[service]
        placed = service in wanted
        if placed and item.gpu:
            ctx.has_gpu  # noqa: B018 - refuses a GPU host whose driver fails (HOMELAB_GPU_DOWNGRADE)
        directory = str(item.project_dir)
        generated = generated_secrets(ctx.plan, service) if placed else []
        if generated:
            directories.present(name=f"{service}: project folder", paths=[directory], user="root",
                                group="root", mode=755)
        for secret in generated:
            secrets.generated_env_file(
                name=f"{service}: {secret.key} (made once on the host)",
                path=f"{directory}/{secret.generated_file}",
                variable=secret.variable,
            )
        compose.service(
            name=f"{service}: compose project" if placed
            else f"{service}: not placed on this host: containers down (data kept)",
            project=service,
            compose=render_compose(ctx.plan, service) if placed else None,
            directory=directory,
            env=env_file(ctx.plan, service) if placed else None,
            pull=ctx.settings.pull_policy.value,
            present=placed,
        )
    # all projects start together; waiting once lets their start periods overlap
    compose.healthy(
        name=f"{', '.join(wanted) or 'no service here'}: running and healthy",
        projects=wanted,
        timeout=300,
    )


def deploy_services(ctx: HostContext, candidates: list[str]) -> list[str]:
    """Deploy those of ``candidates`` that the plan places on this host; take down those it does not."""
    wanted = [service for service in candidates if service in ctx.services]
    storage(ctx, wanted)
    services(ctx, candidates)
    if Service.OPEN_WEBUI in wanted:
        openwebui_steps.admin(ctx)  # once it is healthy: its admin, before anyone else could be
    return wanted
