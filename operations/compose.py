"""Docker Compose projects, brought up only when their files or their containers say so."""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Generator, Mapping
from io import StringIO
from typing import Any

import yaml
from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, operation
from pyinfra.api.exceptions import OperationValueError
from pyinfra.api.util import get_file_sha1
from pyinfra.operations import files

from facts.compose import PIN_FILE, PIN_KEY, PREVIOUS_PIN_FILE, ComposeFiles, ComposeProjects
from facts.reads import read_fact
from operations.images import ImageRef, digest_of
from operations.progress import PROGRESS_EVERY, waiting_line
from operations.uploads import private_file_commands

PULL_POLICIES = ("always", "missing", "never")
_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_CONFIG_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")  # config/ paths: no spaces, no quoting
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# the wait reads each container as "STATUS HEALTH FAILING-STREAK" ("STATUS none" without a health check):
# these shell patterns are the ready ones
_READY = "'running healthy '*|'running none'"


def declared_services(compose: str) -> tuple[set[str], set[str]]:
    """Parse a compose document: (every service name, the services ``up`` starts by default).

    Services behind a ``profiles`` list or scaled to zero are declared but not started.
    """
    try:
        document = yaml.safe_load(compose)
    except yaml.YAMLError as error:
        raise OperationValueError(f"compose: not a valid YAML document ({error})") from None
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict) or not services:
        raise OperationValueError("compose: expected a mapping with a non-empty `services` mapping")
    started = set()
    for name, spec in services.items():
        spec = spec or {}
        replicas = spec.get("scale", (spec.get("deploy") or {}).get("replicas", 1))
        if not spec.get("profiles") and replicas != 0:
            started.add(str(name))
    return {str(name) for name in services}, started


def render_env(env: Mapping[str, str]) -> str:
    """Render ``KEY='value'`` lines that compose reads literally (no interpolation, no escapes).

    Errors name the key, never the value.
    """
    lines = []
    for key, value in env.items():
        if not _ENV_KEY.match(key):
            raise OperationValueError(
                f"env: key {key!r} is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)"
            )
        value = str(value)
        if "'" in value or "\n" in value or "\r" in value or value.endswith("\\"):
            raise OperationValueError(
                f"env: the value of {key} cannot be written to a .env file literally "
                "(it must not hold a single quote or a line break, nor end with a backslash)",
            )
        lines.append(f"{key}='{value}'\n")
    return "".join(lines)


def is_running_as_declared(
    project: Mapping[str, Any] | None,
    all_services: set[str],
    started_services: set[str],
) -> bool:
    """True when every started service has containers, all running and none unhealthy, and the
    project has no container of a service the document no longer declares."""
    if not project:
        return False
    containers = project["containers"]
    if any(container["service"] not in all_services for container in containers):
        return False
    for service in started_services:
        mine = [container for container in containers if container["service"] == service]
        if not mine:
            return False
        if any(c["state"] != "running" or c["health"] == "unhealthy" for c in mine):
            return False
    return True


def _sha1(content: str) -> str:
    return get_file_sha1(StringIO(content))


def _file_commands(
    content: str, dest: str, mode: int, remote: Mapping[str, Any] | None, secret: bool
) -> Generator[Any, None, None]:
    """Commands that make ``dest`` hold ``content`` with ``mode``; none when it already does.

    ``remote`` is the file's mode and SHA-1 as :class:`ComposeFiles` read them. A secret file
    is written by :func:`operations.uploads.private_file_commands` (never readable by anyone but its
    owner, also while staged for a sudo login), and never goes through ``files.put`` (no ``--diff``
    of secrets).
    """
    if remote and remote["sha1"] == _sha1(content):
        if remote["mode"] != mode:
            yield StringCommand("chmod", str(mode), QuoteString(dest))
        return
    if not secret:
        yield from files.put._inner(src=StringIO(content), dest=dest, mode=str(mode))
        return
    yield from private_file_commands(content, dest, mode=0o600)


def _config_commands(directory: str, config: Mapping[str, str], secret: Collection[str],
                     remote: Mapping[str, Any]) -> Generator[Any, None, None]:
    """Commands that make ``<directory>/config/`` hold exactly ``config``; none when it does."""
    for name in config:
        parts = name.split("/")
        if not _CONFIG_NAME.match(name) or ".." in parts or "" in parts:
            raise OperationValueError(f"config: {name!r} is not a relative path of plain names")
    unknown = [name for name in secret if name not in config]
    if unknown:
        raise OperationValueError(f"config_secret: {', '.join(unknown)} not in config")
    writes: list[Any] = []
    folders: set[str] = set()  # of the secret files written (files.put makes its own)
    for name, text in sorted(config.items()):
        private = name in secret
        commands = list(_file_commands(text, f"{directory}/config/{name}", 600 if private else 644,
                                       remote.get(f"config/{name}"), secret=private))
        if private and commands:
            folders.add(f"{directory}/config/{name}".rsplit("/", 1)[0])
        writes += commands
    stale = sorted(name for name in remote
                   if name.startswith("config/") and name.removeprefix("config/") not in config)
    if folders:
        yield StringCommand("mkdir", "-p", *(QuoteString(folder) for folder in sorted(folders)))
    yield from writes
    if stale:
        yield StringCommand("rm", "-f", *(QuoteString(f"{directory}/{name}") for name in stale))


def _compose_command(directory: str, project: str, *arguments: str) -> StringCommand:
    return StringCommand(
        "docker",
        "compose",
        "--project-directory",
        QuoteString(directory),
        "-p",
        QuoteString(project),
        *arguments,
    )


def wait_healthy_command(project: str, timeout: int, every: int = PROGRESS_EVERY) -> str:
    """A shell loop that waits until every container of ``project`` runs (and is healthy where
    it has a health check), or fails after ``timeout`` seconds naming each container that is not,
    with the tail of its health check output and the last lines of its log.

    While it waits it says on stdout, about every ``every`` seconds, what it waits for:
    ``waiting for ollama: starting (41 s of 300 s)`` (each container not ready yet, with its health
    status, or its state where it has no health check). pyinfra shows a command's stdout live only
    at ``-vvv``, and with the output of a command that failed.

    A container reported ``unhealthy`` fails the wait at once: Docker says so only after the health
    check failed ``retries`` times in a row past its start period, and restarts nothing for it, so
    waiting on would only delay the same answer (a ``dead`` container likewise). Docker also says
    ``unhealthy`` of a container whose checks it stopped (paused, stopped) and keeps saying it after
    ``docker unpause`` until the next check runs, up to an interval later; that one has failed no
    check (its failing streak is 0), and is waited for like one starting."""
    project_filter = shlex.quote(f"label=com.docker.compose.project={project}")
    state_format = shlex.quote(
        "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}} {{.State.Health.FailingStreak}}"
        "{{else}}none{{end}}",
    )
    report_format = shlex.quote(
        "{{slice .Name 1}} is {{.State.Status}}{{with .State.Health}} ({{.Status}});"
        " last health check output:{{range .Log}}{{println}}{{.Output}}{{end}}{{end}}",
    )
    waiting_format = shlex.quote(
        "{{slice .Name 1}}: {{with .State.Health}}{{if and (eq .Status \"unhealthy\") (eq .FailingStreak 0)}}"
        "its next health check{{else}}{{.Status}}{{end}}{{else}}{{.State.Status}}{{end}}",
    )
    headline = shlex.quote(f"compose project {project}: not ready after {int(timeout)}s:")
    failing = shlex.quote(f"compose project {project}: unhealthy (its health check keeps failing):")
    return (
        f"start=$(date +%s); deadline=$(( start + {int(timeout)} )); said=$start; "
        "while :; do pending=; failed=; "
        f"for id in $(docker ps --all --quiet --filter {project_filter} "
        "--filter label=com.docker.compose.oneoff=False); do "
        f'case "$(docker inspect --format {state_format} "$id")" in {_READY}) ;; '
        "*' unhealthy 0') pending=\"$pending $id\" ;; "
        "*' unhealthy '*|'dead '*) failed=\"$failed $id\" ;; "
        '*) pending="$pending $id" ;; esac; done; '
        '[ -n "$failed" ] && { pending=$failed; headline=' + failing + '; break; }; '
        '[ -z "$pending" ] && exit 0; '
        '[ "$(date +%s)" -ge "$deadline" ] && { headline=' + headline + '; break; }; '
        f'now=$(date +%s); if [ $(( now - said )) -ge {int(every)} ]; then said=$now; waiting=; '
        f'for id in $pending; do waiting="$waiting${{waiting:+, }}$(docker inspect --format {waiting_format} '
        '"$id")"; done; '
        f'echo "{waiting_line("$waiting", "$(( now - start ))", timeout)}"; fi; '
        "sleep 2; done; "
        'echo "$headline" >&2; '
        f'for id in $pending; do docker inspect --format {report_format} "$id" '
        "| grep -v '^[[:space:]]*$' | tail -n 12 >&2; "
        "echo '  last log lines:' >&2; docker logs --tail 8 \"$id\" 2>&1 | sed 's/^/    /' >&2; done; "
        "exit 1"
    )


# the project's files as they were before an update, put back with the pin before when it is rolled back
SAVED_FILES = "compose.yaml .env"
BEFORE_UPDATE = ".before-update"


def pin_command(directory: str, project: str, service: str, image: str, up: str, rollback: str | None,
                digest: str | None = None) -> str:
    """Shell that pins ``service`` to the exact image the host holds for ``image`` and brings the
    project up on it; with ``rollback`` (the health wait), an image whose containers do not become
    healthy is rolled back to the pin before it (or to no pin) and to the project's files as
    :func:`save_files_command` kept them, and the command fails with one line
    naming the service, the new image and its health check output, then the wait's full report.

    The pin is the image's registry digest (``repo@sha256:…``), or its ID for an image that came from
    no registry. One image can hold several digests of one repository (the same image pushed under two
    tags, or a tag that moved back to an image the host still holds): ``digest``, the one its registry
    served for the tag when the plan asked, is chosen where the image holds it; otherwise the first.
    The pin before is kept in ``compose.override.previous.yaml`` for a rollback by hand.
    Data is not touched: only the image changes."""
    ref = ImageRef.parse(image)
    quoted = shlex.quote(image)
    header = (
        "# Managed by homelab-pyinfra: the image this service runs, pinned by its digest. Docker Compose",
        "# reads this file with compose.yaml. An update moves the pin; the one before it is kept in",
        f"# {PREVIOUS_PIN_FILE} (copy it over this file and run `docker compose up -d` to go back).",
    )
    lines = " ".join(shlex.quote(line) for line in header)
    write = (
        f"printf '%s\\n' {lines} {shlex.quote(PIN_KEY + ':')} "
        '"  image: \\"$ref\\"" "  pinned: \\"$pinned\\"" services: '
        f'{shlex.quote("  " + service + ":")} "    image: \\"$pinned\\"" > {PIN_FILE}.new '
        f"&& mv {PIN_FILE}.new {PIN_FILE}"
    )
    script = (
        f"cd {shlex.quote(directory)} || exit 1; ref={quoted}; pinned=; "
        f"want={shlex.quote(ref.pinned(digest) if digest else '')}; "
        "held=$(docker image inspect --format '{{range .RepoDigests}}{{.}} {{end}}' \"$ref\" 2>/dev/null); "
        'for found in $held; do [ "$found" = "$want" ] && { pinned=$found; break; }; done; '
        '[ -n "$pinned" ] || for found in $held; '
        f'do case "$found" in {shlex.quote(ref.repository)}@sha256:*) pinned=$found; break ;; esac; done; '
        '[ -n "$pinned" ] || pinned=$(docker image inspect --format \'{{.Id}}\' "$ref" 2>/dev/null) || '
        f'{{ echo "{project}: the image $ref is not on the host, so it cannot be pinned" >&2; exit 1; }}; '
        f"old=; if [ -f {PIN_FILE} ]; then "
        f"old=$(sed -n 's/^  pinned: \"\\(.*\\)\"$/\\1/p' {PIN_FILE}); cp -p {PIN_FILE} {PREVIOUS_PIN_FILE}; "
        f"else rm -f {PREVIOUS_PIN_FILE}; fi; "
        f"{write} || exit 1; "
    )
    if rollback is None:
        return script + up
    back = (
        f"if [ -f {PREVIOUS_PIN_FILE} ]; then cp -p {PREVIOUS_PIN_FILE} {PIN_FILE}; "
        f"else rm -f {PIN_FILE}; fi; "
        f'for f in {SAVED_FILES}; do [ -f "$f{BEFORE_UPDATE}" ] && mv -f "$f{BEFORE_UPDATE}" "$f"; done; '
        f"{up} >/dev/null 2>&1; "
        f'if again=$( ( {rollback} ) 2>&1 ); then now="rolled back to ${{old:-the image it ran before}}, '
        'healthy again"; else now="rolled back to ${old:-the image it ran before}, which is not healthy '
        'either"; report="$report\n$again"; fi; '
    )
    said = (
        "line=$(printf '%s\\n' \"$report\" | awk '/last log lines:/ {exit} seen && NF {last=$0} "
        "/last health check output:/ {seen=1} END {sub(/^[[:space:]]+/, \"\", last); print last}'); "
        f'echo "{project}: the new image $ref ($pinned) is not healthy: $now. '
        'Health check: ${line:-no output}" >&2; printf \'%b\\n\' "$report" >&2; exit 1'
    )
    return (
        script
        + f"if ! report=$( {{ {up}; }} 2>&1 ); then {back}{said}; fi; "
        + f"if ! report=$( ( {rollback} ) 2>&1 ); then {back}{said}; fi; "
        + f"rm -f {' '.join(name + BEFORE_UPDATE for name in SAVED_FILES.split())}"
    )


def save_files_command(directory: str) -> str:
    """Shell that keeps a copy of the project's files as they are (modes kept: ``.env`` stays 0600),
    for :func:`pin_command` to put back when it rolls an update back."""
    return (
        f"cd {shlex.quote(directory)} && for f in {SAVED_FILES}; do "
        f'if [ -f "$f" ]; then cp -p "$f" "$f{BEFORE_UPDATE}"; else rm -f "$f{BEFORE_UPDATE}"; fi; done'
    )


@operation()
def service(
    project: str,
    compose: str | None,
    directory: str,
    env: Mapping[str, str] | None = None,
    present: bool = True,
    pull: str = "missing",
    wait_healthy: bool = False,
    wait_timeout: int = 120,
    env_secret: bool = True,
    image: str | None = None,
    repin: bool = False,
    digest: str | None = None,
    config: Mapping[str, str] | None = None,
    config_secret: Collection[str] = (),
):
    """
    Run a Docker Compose project from a compose document, idempotently.

    + project: compose project name (lowercase letters, digits, ``-``, ``_``)
    + compose: the compose file's text (YAML); written to ``<directory>/compose.yaml`` (0644);
      not needed with ``present=False``
    + directory: the project directory on the host (created if missing)
    + env: variables written to ``<directory>/.env`` for compose's interpolation; ``None``
      leaves any ``.env`` alone. Values are written literally (no ``$`` expansion)
    + present: ``False`` runs ``docker compose down`` (never ``-v``: volumes and data stay)
    + pull: image pull policy for ``up``: ``always``, ``missing`` or ``never``
    + wait_healthy: after ``up``, wait until every container runs and is healthy
    + wait_timeout: seconds to wait before failing, naming the containers that are not ready
    + env_secret: ``.env`` holds secrets: mode 0600, created 0600 before it is written, never
      shown by ``--diff``. ``False`` uploads it like ``compose.yaml`` (0644, diffed)
    + image: pin the project's one service to the exact image the host holds for this reference
      (pull it first: see ``images.pulled``), in ``compose.override.yaml`` beside ``compose.yaml``.
      The pin is made when there is none or it belongs to another reference, and then kept: a tag
      that moves in its registry changes nothing here until ``repin``. Moving a pin of a project that
      runs waits for its health and rolls back to the pin before if it does not become healthy
    + repin: pin ``image`` again although the pin belongs to it (its tag has moved: an update)
    + digest: the digest ``image``'s registry serves for its tag (``sha256:…``), where known: the pin
      names it when the host's image holds several digests of the repository
    + config: configuration files of the project, path relative to ``<directory>/config/`` -> text
      (0644); a file under ``config/`` that is not listed is removed; ``None`` leaves ``config/`` alone.
      A changed file re-creates the containers (``up --force-recreate``): a program reads its mounted
      configuration when it starts
    + config_secret: the paths of ``config`` that hold a secret: written 0600 like ``.env``, never shown
      by ``--diff``

    ``docker compose up -d`` runs only when ``compose.yaml``, ``.env`` or a config file changed, or the
    project
    is not running as declared: a service started by default has no container, a container is
    not running or is unhealthy, or a container belongs to a service the document no longer
    has. (A one-shot service that exits by design therefore makes every run an ``up``.)

    **Example:**

    .. code:: python

        compose.service(
            name="Run the demo project",
            project="demo",
            compose=Path("files/demo.yaml").read_text(),
            directory="/opt/demo",
            env={"DEMO_PASSWORD": password},
            wait_healthy=True,
        )
    """
    if not _PROJECT_NAME.match(project):
        raise OperationValueError(
            f"project: {project!r} is not a compose project name (lowercase letters, digits, - and _)",
        )
    if pull not in PULL_POLICIES:
        raise OperationValueError(f"pull: {pull!r} is not one of {', '.join(PULL_POLICIES)}")
    if not directory.startswith("/"):
        raise OperationValueError(f"directory: {directory!r} is not an absolute path")
    if wait_timeout <= 0:
        raise OperationValueError(f"wait_timeout: {wait_timeout!r} must be a positive number of seconds")
    if present and compose is None:
        raise OperationValueError("compose: a compose document is needed to run the project")
    if digest is not None and digest_of(digest) != digest:
        raise OperationValueError(f"digest: {digest!r} is not a sha256 digest")
    directory = directory.rstrip("/") or "/"
    # this project's files, and every project's containers (one read, shared by every project)
    deployment = {**read_fact(ComposeFiles, directory=directory, host=host),
                  "projects": read_fact(ComposeProjects, host=host)}
    current = deployment["projects"].get(project)

    if not present:
        if not current:
            host.noop(f"compose project {project} is not running")
            return
        yield _compose_command(directory, project, "down", "--remove-orphans")
        return

    all_services, started_services = declared_services(compose)
    remote = deployment["files"]
    file_commands = list(
        _file_commands(compose, f"{directory}/compose.yaml", 644, remote.get("compose.yaml"), secret=False)
    )
    if env is not None:
        file_commands += list(
            _file_commands(
                render_env(env),
                f"{directory}/.env",
                600 if env_secret else 644,
                remote.get(".env"),
                secret=env_secret,
            )
        )

    config_commands = (
        [] if config is None else list(_config_commands(directory, config, config_secret, remote))
    )
    file_commands += config_commands

    pinning = drifted = False
    if image is not None:
        if len(all_services) != 1:
            raise OperationValueError("image: pinning needs a compose document with exactly one service")
        pin = deployment.get("pin")
        pinning = repin or pin is None or pin["image"] != image
        # a container made from something else than the pin (by hand) is brought back to the pin
        drifted = bool(pin and current and any(c["image"] != pin["pinned"] for c in current["containers"]))

    running = is_running_as_declared(current, all_services, started_services)
    if not pinning and not drifted and not file_commands and running:
        host.noop(f"compose project {project} is running as declared")
        return

    recreate = ("--force-recreate",) if config_commands and current else ()
    up = _compose_command(directory, project, "up", "--detach", "--pull", pull, "--remove-orphans", *recreate)
    # something runs now: a new image that is not healthy goes back to it, files and all
    rollback = wait_healthy_command(project, wait_timeout) if pinning and current else None
    if rollback is not None and file_commands:
        yield save_files_command(directory)
    yield from file_commands
    if pinning:
        assert image is not None
        yield pin_command(directory, project, next(iter(all_services)), image, up.get_raw_value(), rollback,
                          digest)
        if rollback is None and wait_healthy:
            yield wait_healthy_command(project, wait_timeout)
        return
    yield up
    if wait_healthy:
        yield wait_healthy_command(project, wait_timeout)


def _ready(project: Mapping[str, Any] | None) -> bool:
    if not project or not project["containers"]:
        return False
    return all(
        container["state"] == "running" and container["health"] in ("healthy", None)
        for container in project["containers"]
    )


@operation()
def healthy(projects: list[str], timeout: int = 300):
    """
    Wait until every container of these compose projects runs, and is healthy where it has a
    health check; fail after ``timeout`` seconds naming each container that is not, with the tail
    of its health check log.

    + projects: compose project names
    + timeout: seconds to wait for each project

    Bring several projects up first (``service`` without ``wait_healthy``) and wait for them all
    here: their start periods then overlap instead of adding up. No-op when all are ready.

    **Example:**

    .. code:: python

        compose.healthy(name="Services healthy", projects=["ollama", "open-webui"])
    """
    if timeout <= 0:
        raise OperationValueError(f"timeout: {timeout!r} must be a positive number of seconds")
    state = read_fact(ComposeProjects, host=host)
    pending = [project for project in projects if not _ready(state.get(project))]
    if not pending:
        host.noop(f"compose projects {', '.join(projects)} are running and healthy")
        return
    for project in pending:
        yield wait_healthy_command(project, timeout)
