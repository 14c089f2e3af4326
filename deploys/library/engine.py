"""Which Docker engine a host gets: the one it has, unless the settings explicitly ask for another.

One rule, read by the preflight (``check_docker``) and the deploy (``infra.docker_engine``) alike.
``HOMELAB_DOCKER_SOURCE=auto`` (the default) keeps the engine the host already runs -- Docker's
``docker-ce``, or the distribution's ``docker.io`` / ``moby-engine`` -- and installs ``docker-ce``
where there is none. An explicit ``docker-ce`` or ``distro`` on a host with the other engine replaces
it, but never while that engine runs containers: the deploy refuses and says how to go on.
Podman's ``podman-docker`` (a ``docker`` command for Podman, not a Docker engine) is replaced only on
an explicit source; Podman itself and its containers are not touched by that.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from deploys.library.settings import DockerSource

DOCKER_CE_ENGINE = "docker-ce"
PODMAN_DOCKER = "podman-docker"
SETTING = "HOMELAB_DOCKER_SOURCE"


@dataclass(frozen=True)
class EngineChoice:
    source: DockerSource | None  # what the deploy installs or keeps; None when it refuses
    installed: str | None  # the engine package on the host: docker-ce, docker.io, moby-engine, podman-docker
    replaces: str | None = None  # the installed package the deploy removes to install `source`
    refusal: str | None = None  # why the deploy refuses this host (one line, without the host name)

    @property
    def keeps(self) -> bool:
        return self.installed is not None and self.replaces is None and self.refusal is None


def installed_engine(packages: Collection[str], distro_engine: str | None) -> str | None:
    """The package of the Docker engine (or Podman's docker command) installed on the host."""
    for name in (DOCKER_CE_ENGINE, distro_engine, PODMAN_DOCKER):
        if name and name in packages:
            return name
    return None


def _source_of(engine: str) -> DockerSource | None:
    if engine == DOCKER_CE_ENGINE:
        return DockerSource.DOCKER_CE
    if engine == PODMAN_DOCKER:
        return None
    return DockerSource.DISTRO


def _shown(names: list[str], most: int = 5) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def choose_engine(
    configured: DockerSource,
    packages: Collection[str],
    distro_engine: str | None,
    running_containers: Callable[[], list[str] | None],
) -> EngineChoice:
    """The engine for a host with these installed ``packages``; ``running_containers`` is asked only
    when an engine would be replaced (``None``: could not be listed, which refuses as well)."""
    engine = installed_engine(packages, distro_engine)
    if engine is None:
        wanted = DockerSource.DOCKER_CE if configured is DockerSource.AUTO else configured
        return EngineChoice(source=wanted, installed=None)
    has = _source_of(engine)
    if configured is DockerSource.AUTO:
        if has is None:
            return EngineChoice(None, engine, refusal=(
                f"{engine} is installed (Podman's `docker` command, not a Docker engine) and {SETTING}=auto "
                f"keeps what is installed: set {SETTING}=docker-ce or distro to replace {engine} with a "
                "Docker engine (Podman and its containers stay)"
            ))
        return EngineChoice(source=has, installed=engine)
    if has is configured or has is None:
        return EngineChoice(source=configured, installed=engine,
                            replaces=engine if has is None else None)
    running = running_containers()
    if running is None or running:
        what = ("containers that could not be listed (`docker ps` failed)" if running is None
                else f"{len(running)} running container(s): {_shown(running)}")
        return EngineChoice(None, engine, refusal=(
            f"{SETTING}={configured.value} would replace the installed {engine}, which has {what}; "
            "the deploy does not remove the engine under running containers: stop them first "
            f"(`docker stop`), or set {SETTING}=auto to keep {engine}"
        ))
    return EngineChoice(source=configured, installed=engine, replaces=engine)
