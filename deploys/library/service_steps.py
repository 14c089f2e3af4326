"""Service steps: the cold-storage tree, one compose project per service placed on the host, each
pinned to the exact image it runs (new images pulled first, a backup taken before an update, an
unhealthy update rolled back), and the containers of services no longer placed here taken down (their
data stays)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from deploys.library import backup_steps, monitoring_config, openwebui_steps
from deploys.library.catalog import CATALOG, Service
from deploys.library.compose_files import data_dirs, env_file, generated_secrets, npm_data_dir, render_compose
from deploys.library.context import DeployError, HostContext, listed, logger
from deploys.library.settings import PullPolicy
from deploys.library.tls import CA_BUNDLE_NAME
from facts.compose import ComposeFiles, ComposeProjects
from facts.images import RegistryDigests
from facts.reads import read_fact
from operations import compose, directories, images, secrets
from operations.images import digest_of, short

# how long an update's new image has to become healthy before it is rolled back, and the wait for
# every service of the host after they all start (the longest start period is ComfyUI's 180 s)
HEALTH_TIMEOUT = 300


@dataclass(frozen=True)
class ImageChange:
    """What a run does to the image of one service placed on this host."""

    service: str
    image: str  # the image setting
    before: str | None  # what runs now: the pinned image, or the image of a project without a pin
    pinned_to: str | None  # the image setting the pin belongs to
    registry: dict[str, str]  # what the registry serves for ``image`` now (when it was asked)
    moved: bool  # the pin's tag has moved in its registry (an update asked for it)

    @property
    def changes(self) -> bool:
        return self.pinned_to != self.image or self.moved

    @property
    def running(self) -> bool:
        return self.before is not None

    def describe(self) -> str:
        new = self.image
        if self.registry.get("digest"):
            new += f" ({short(self.registry['digest'])})"
        elif self.registry.get("error"):
            new += f" (the registry says: {self.registry['error']})"
        old = f"{self.pinned_to} ({short(self.before)})" if self.pinned_to else self.before
        return f"{self.service}: image {old} -> {new}"


def image_changes(ctx: HostContext, services: list[str], refresh: Iterable[str] = ()) -> list[ImageChange]:
    """For each service placed here: its pin, what runs, and whether the run moves the pin. With
    ``refresh`` (an update), those services' registries are asked whether their tags have moved;
    otherwise a registry is asked only about images that change anyway (for ``--dry`` to show them)."""
    refresh = set(refresh)
    found = {}
    projects = read_fact(ComposeProjects, host=host) if services else {}
    for service in services:
        pin = read_fact(ComposeFiles, directory=str(CATALOG[service].project_dir), host=host).get("pin")
        project = projects.get(CATALOG[service].name)
        containers = project["containers"] if project else []
        before = pin["pinned"] if pin else (containers[0]["image"] if containers else None)
        found[service] = (ctx.settings.image_for(service), pin, before)
    asked = [image for service, (image, pin, _) in found.items()
             if service in refresh or pin is None or pin["image"] != image]
    registry = read_fact(RegistryDigests, refs=sorted(set(asked)), host=host) if asked else {}
    changes = []
    for service, (image, pin, before) in found.items():
        served = registry.get(image, {})
        moved = (service in refresh and pin is not None and pin["image"] == image
                 and served.get("digest") is not None and served["digest"] != digest_of(pin["pinned"]))
        changes.append(ImageChange(service, image, before, pin["image"] if pin else None, served, moved))
        if service in refresh and "error" in served and not host.state.is_executing:
            logger.warning(f"{host.name}: {service}: not updated: its registry could not be asked "
                           f"about {image} ({served['error']})")
    return changes


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
def services(ctx: HostContext, candidates: list[str], refresh: Iterable[str] = ()):
    """One compose project per candidate, in the catalog's order: running where the plan places the
    service, taken down where it does not (``docker compose down``, never ``-v``: its data folders and
    project files stay, so placing it back brings it up on the same data); then one health wait for all
    that run here. Every host runs the same operations in the same order (pyinfra orders operations
    across hosts by the order they are called in; host-dependent branches would make a cycle).

    Each service runs the image its pin names (``compose.override.yaml``). Images that change are
    pulled first, all at once, before any container stops; where one replaces a running image and
    backups are configured, a backup is taken first; a replaced image that does not become healthy is
    rolled back. ``refresh``: services whose tags are asked again of their registries (an update)."""
    wanted = [service for service in candidates if service in ctx.services]
    changes = {change.service: change for change in image_changes(ctx, wanted, refresh)}
    changing = [change for change in changes.values() if change.changes]
    never = ctx.settings.pull_policy is PullPolicy.NEVER
    images.pulled(
        name=("New images pulled first, all at once, before anything stops"
              + (" (HOMELAB_PULL_POLICY=never: none)" if never and changing else "")),
        refs=[] if never else sorted({change.image for change in changing}),
        present_ok=not refresh,
        digests={change.image: change.registry["digest"] for change in changing
                 if change.registry.get("digest")},
    )
    updates = [change.service for change in changing if change.running]
    if ctx.settings.backups:
        backup_steps.before_update(ctx, updates)
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
        if placed and service == Service.NGINX_PROXY_MANAGER and ctx.settings.tls_ca_bundle is not None:
            files.put(  # the private ACME server's roots, for certbot (REQUESTS_CA_BUNDLE in the container)
                name=f"{service}: the private ACME server's CA bundle (HOMELAB_TLS_CA_FILE)",
                src=StringIO(ctx.settings.tls_ca_bundle),
                dest=str(npm_data_dir(ctx.settings) / CA_BUNDLE_NAME),
                user="root", group="root", mode="644", create_remote_dir=False,  # made by storage()
            )
        change = changes.get(service)
        if not placed:
            title = f"{service}: not placed on this host: containers down (data kept)"
        elif change is not None and change.changes and change.running:
            title = change.describe() + " (rolled back if not healthy)"
        else:
            title = f"{service}: compose project"
        config = config_files(ctx, service) if placed and item.config_target is not None else None
        compose.service(
            name=title,
            project=service,
            compose=render_compose(ctx.plan, service) if placed else None,
            config=config,
            config_secret=monitoring_config.SECRET_FILES.get(service, ()),
            directory=directory,
            env=env_file(ctx.plan, service) if placed else None,
            pull=ctx.settings.pull_policy.value,
            present=placed,
            image=change.image if change else None,
            repin=bool(change and change.moved),
            digest=change.registry.get("digest") if change else None,
            wait_timeout=HEALTH_TIMEOUT,
        )
    # all projects start together; waiting once lets their start periods overlap
    compose.healthy(
        name=f"{', '.join(wanted) or 'no service here'}: running and healthy",
        projects=wanted,
        timeout=HEALTH_TIMEOUT,
    )


def config_files(ctx: HostContext, service: str) -> dict[str, str]:
    """The configuration files the deploy renders for ``service`` (its project's ``config/``)."""
    watched = ctx.plan.monitoring
    if watched is None:
        raise DeployError(f"{host.name}: {service} runs where Prometheus does not: its configuration "
                          "comes from the monitoring host's plan")
    webhook = ctx.settings.monitoring_webhook_url
    return monitoring_config.config_files(
        service, watched,
        webhook_url=webhook.get_secret_value() if webhook is not None else None,
        ca_bundle=ctx.settings.tls_ca_bundle if watched.ca_bundle else None,
    )


def outdated_report(host_name: str, settings, services: list[str], pins: dict[str, dict[str, str] | None],
                    registry: dict[str, dict[str, str]]) -> tuple[str, int]:
    """(a table, how many services an update would change): per service placed on the host, the tag
    its pin belongs to, the digest it runs, the digest its registry serves for that tag now, and what
    to do about it."""
    rows = []
    behind = 0
    for service in services:
        pin = pins.get(service)
        wanted = settings.image_for(service)
        if pin is None:
            rows.append((service, wanted, "-", "-", "not deployed (or from before pins): a deploy pins it"))
            continue
        served = registry.get(pin["image"], {})
        now = served.get("digest")
        if now is None:
            verdict = f"registry not readable: {served.get('error', 'not asked')}"
        elif now == digest_of(pin["pinned"]):
            verdict = "current"
        else:
            behind += 1
            verdict = "the tag has moved: deploys/update.py updates it"
        if pin["image"] != wanted:
            verdict += f"; the setting asks for {wanted}: the next deploy updates it"
        rows.append((service, pin["image"], short(pin["pinned"]), short(now) if now else "?", verdict))
    header = ("service", "pinned tag", "runs", "registry now", "")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]
    lines = [f"Images on {host_name}"]
    for row in [header, *rows]:
        lines.append("  " + "  ".join(f"{row[i]:<{widths[i]}}" for i in range(4)) + f"  {row[4]}".rstrip())
    lines.append(f"  {behind} of {len(services)} behind their registry" if services else "  no service here")
    return "\n".join(lines), behind


def update_request(ctx: HostContext, data) -> list[str]:
    """The services whose tags ``deploys/update.py`` asks again of their registries: those of
    ``--data update_services=a,b`` (each must run on this host), else every service placed here."""
    asked = listed(data.get("update_services"))
    unknown = [service for service in asked if service not in CATALOG]
    if unknown:
        raise DeployError(f"{host.name}: update_services={','.join(asked)}: {', '.join(unknown)} is not a "
                          f"service (the services: {', '.join(CATALOG)})")
    return [service for service in asked if service in ctx.services] if asked else list(ctx.services)


def deploy_services(ctx: HostContext, candidates: list[str], refresh: Iterable[str] = ()) -> list[str]:
    """Deploy those of ``candidates`` that the plan places on this host; take down those it does not.
    ``refresh``: services whose image tags are asked again of their registries (deploys/update.py)."""
    wanted = [service for service in candidates if service in ctx.services]
    storage(ctx, wanted)
    services(ctx, candidates, refresh)
    if Service.OPEN_WEBUI in wanted:
        openwebui_steps.admin(ctx)  # once it is healthy: its admin, before anyone else could be
    return wanted
