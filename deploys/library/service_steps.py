"""Service steps: the cold-storage tree and one compose project per service."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from deploys.library.catalog import (
    CATALOG,
    WEBUI_SECRET_FILE,
    Placement,
    data_dirs,
    env_file,
    project_dir,
    render_compose,
)
from deploys.library.context import HostContext, hosts_running
from deploys.library.settings import Service
from operations import compose, directories, secrets


def proxy_elsewhere(ctx: HostContext) -> bool:
    """NGINX Proxy Manager runs on other hosts only: upstreams must be reachable over Tailscale."""
    npm_hosts = hosts_running(Service.NGINX_PROXY_MANAGER)
    return bool(npm_hosts) and all(each.name != host.name for each in npm_hosts)


def placement(ctx: HostContext, service: Service) -> Placement:
    remote_proxy = proxy_elsewhere(ctx)
    publishes = bool(CATALOG[service].host_ports) or remote_proxy
    return Placement(
        tailscale_ip=ctx.require_tailscale_ip() if publishes else (ctx.tailscale_ip or "127.0.0.1"),
        # asked only for a GPU service: a host whose driver fails still deploys NPM and Pi-hole
        gpu=CATALOG[service].gpu and ctx.has_gpu,
        publish_upstream=remote_proxy,
        webui_secret_from_settings=ctx.settings.open_webui_secret_key is not None,
    )


@deploy("Cold storage")
def storage(ctx: HostContext, services: list[Service]):
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
            name=f"{', '.join(s.value for s in services)}: data folders ({owner}, {mode})",
            paths=paths,
            user=user,
            group=group,
            mode=int(mode),
        )


@deploy("Compose services")
def services(ctx: HostContext, wanted: list[Service]):
    for service in wanted:
        directory = str(project_dir(service))
        where = placement(ctx, service)
        if service is Service.OPEN_WEBUI and not where.webui_secret_from_settings:
            files.directory(name=f"{service.value}: project folder", path=directory, mode="755")
            secrets.generated_env_file(
                name=f"{service.value}: session secret (made once on the host)",
                path=f"{directory}/{WEBUI_SECRET_FILE}",
                variable="WEBUI_SECRET_KEY",
            )
        compose.service(
            name=f"{service.value}: compose project",
            project=service.value,
            compose=render_compose(ctx.settings, service, where),
            directory=directory,
            env=env_file(ctx.settings, service, where),
            pull=ctx.settings.pull_policy.value,
        )
    # all projects start together; waiting once lets their start periods overlap
    compose.healthy(
        name=f"{', '.join(s.value for s in wanted)}: running and healthy",
        projects=[service.value for service in wanted],
        timeout=300,
    )


def deploy_services(ctx: HostContext, candidates: list[Service]) -> list[Service]:
    """Deploy those of ``candidates`` that are enabled and placed on this host."""
    wanted = [service for service in candidates if service in ctx.services]
    if not wanted:
        host.noop("none of " + ", ".join(s.value for s in candidates) + " is placed on this host")
        return wanted
    storage(ctx, wanted)
    services(ctx, wanted)
    return wanted
