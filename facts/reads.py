"""One read of each subject per run, and every read of a run in one remote command.

pyinfra caches no fact: each ``host.get_fact`` starts a remote command, and an operation's body runs
twice (once to plan, once to execute), reading its facts each time. :func:`read_fact` is ``host.get_fact``
with two additions:

- **shared**: a fact read with the same arguments on the same host is read once per run and shared
  by every deploy file and operation. A shared value stays valid while the host is as it was read:
  once an operation has run a command on a host (or failed there), that host's reads go to the host
  again (``_Invalidate``), so nothing is decided on a stale value. Operations read the host before
  their first command, as pyinfra's own do.
- **read ahead**: each run records which facts it read on each host, per deploy file, in a small
  file on the controller (``$HOMELAB_READ_AHEAD``, by default ``~/.cache/homelab/read-ahead``;
  ``off`` turns it off). The next run of that deploy file on that host reads all of them at its first
  read, in one remote command whose parts are the facts' own commands, each parsed by its own fact.
  A part that fails is read again on its own when asked for (pyinfra's own errors and messages); a
  fact the file does not list is read on its own when asked for, as before. The file lists which facts
  were read, never a value, so a stale list costs at most a part read for nothing or one read more.

Polls (waiting for a container to become healthy, a port to open) must see the host change: they call
``host.get_fact`` themselves.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import importlib
import json
import logging
import os
import re
import secrets
import weakref
from dataclasses import dataclass, field
from inspect import getcallargs
from pathlib import Path
from typing import Any

import gevent.lock
from pyinfra.api import FactBase, StringCommand
from pyinfra.api.facts import ShortFactBase
from pyinfra.api.state import BaseStateCallback, State
from pyinfra.context import ctx_host

logger = logging.getLogger("homelab")

ENV = "HOMELAB_READ_AHEAD"  # a folder for the lists of reads, or "off"
_KEY = "homelab_reads"
# pyinfra's answer for a fact whose requires_command the host lacks (pyinfra.api.facts)
_MISSING = "##PYINFRA_NOCMD##"
# a remote command stays well below Linux's 128 KiB limit for one argument (sh -c '...')
MAX_COMMAND_BYTES = 96 * 1024
_END = re.compile(r"^(?P<tail>.*)### homelab-read-end (?P<nonce>[0-9a-f]+) (?P<index>\d+) (?P<rc>\d+)$")


def read_fact(cls: type[FactBase], host: Any = None, **kwargs: Any) -> Any:
    """``host.get_fact(cls, **kwargs)``, read once per run and host while the host is unchanged, and
    read ahead with the rest of the run's reads (module docstring). ``host`` defaults to the current
    one. The caller gets its own copy of the value."""
    host = host if host is not None else ctx_host.get()
    reads = _host_reads(host)
    if reads is None or not _cacheable(cls):
        return host.get_fact(cls, **kwargs)
    kwargs = _normalised(cls, kwargs)
    key = _key(cls, kwargs)
    with reads.lock:
        reads.asked.setdefault(key, {"fact": _name(cls), "kwargs": kwargs})
        if reads.dirty:
            return host.get_fact(cls, **kwargs)
        if not reads.ahead_done:
            reads.ahead_done = True
            _read_ahead(host, reads)
        if key not in reads.values:
            value = host.get_fact(cls, **kwargs)
            if reads.dirty:
                return value
            reads.values[key] = value
        return copy.deepcopy(reads.values[key])


@dataclass
class HostReads:
    """What one run has read on one host."""

    learned: Path | None  # the file listing the reads of this deploy file on this host (None: off)
    lock: gevent.lock.RLock = field(default_factory=gevent.lock.RLock)
    values: dict[str, Any] = field(default_factory=dict)  # key -> the value read
    asked: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {fact, kwargs}, in order
    dirty: bool = False  # an operation has run a command on the host
    current_op: Any = None  # the hash of the operation running on the host
    ahead_done: bool = False
    commands: int = 0  # read-ahead commands run (for the benchmark and the tests)
    parts: int = 0  # facts they read


def run_reads(state: Any) -> dict[str, HostReads]:
    """Host name -> its reads, for this run (``state``)."""
    return state.__dict__.setdefault(_KEY, {})


def save(state: Any) -> None:
    """Write each host's list of reads for the next run (also done when the process exits)."""
    failed = {host.name for host in getattr(state, "failed_hosts", ())}
    for name, reads in run_reads(state).items():
        if reads.learned is None or not reads.asked:
            continue
        entries = list(reads.asked.values())
        if name in failed:  # a run cut short read less than the deploy needs: keep what was known
            known = {_key_of(entry) for entry in entries}
            entries += [entry for entry in _load(reads.learned) if _key_of(entry) not in known]
        if entries == _load(reads.learned):
            continue
        try:
            reads.learned.parent.mkdir(parents=True, exist_ok=True)
            temporary = reads.learned.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
            temporary.replace(reads.learned)
        except OSError as error:  # a read-only home: the next run reads fact by fact, as without it
            logger.debug("read-ahead list not written (%s): %s", reads.learned, error)


_STATES: weakref.WeakSet = weakref.WeakSet()  # the runs of this process, saved when it exits


@atexit.register
def _save_all() -> None:
    for state in list(_STATES):
        save(state)


class _Invalidate(BaseStateCallback):
    """A host's shared reads end once an operation has run a command on it (seen when the next one
    starts: an operation reads the host before its first command), or has failed there."""

    @staticmethod
    def operation_host_start(state: Any, host: Any, op_hash: Any) -> None:
        reads = run_reads(state).get(host.name)
        if reads is None:
            return
        try:
            ops = state.ops.get(host, {})
            if op_hash not in ops:  # an operation of other hosts, skipped here: it runs nothing here
                return
            previous, reads.current_op = reads.current_op, op_hash
            if previous is not None and ops[previous].operation_meta.executed:
                reads.dirty = True
        except Exception:  # noqa: BLE001 - not known: the host is read again, never wrongly shared
            reads.dirty = True

    @staticmethod
    def operation_host_error(state: Any, host: Any, op_hash: Any, retry_count: int = 0,
                             max_retries: int = 0) -> None:
        reads = run_reads(state).get(host.name)
        if reads is not None:
            reads.dirty = True


def _host_reads(host: Any) -> HostReads | None:
    state = getattr(host, "state", None)
    if not isinstance(state, State):  # a test's stand-in host: its get_fact answers as scripted
        return None
    found = run_reads(state)
    reads = found.get(host.name)
    if reads is None:
        if not found:
            state.add_callback_handler(_Invalidate())
            _STATES.add(state)
        reads = found[host.name] = HostReads(learned=_learned_file(state, host))
    return reads


def _learned_file(state: Any, host: Any) -> Path | None:
    setting = os.environ.get(ENV, "").strip()
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    folder = Path(setting) if setting else Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "homelab" / "read-ahead"
    deploy = state.current_exec_filename or "run"
    path = str(Path(deploy).resolve()) if deploy != "run" else deploy
    digest = hashlib.sha1(f"{host.name}\0{path}".encode()).hexdigest()[:12]  # noqa: S324 (a file name)
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{host.name}-{Path(path).stem}")[:80]
    return folder / f"{readable}-{digest}.json"


def _cacheable(cls: type) -> bool:
    return (isinstance(cls, type) and issubclass(cls, FactBase) and not issubclass(cls, ShortFactBase)
            and cls.shell_executable is None
            and getattr(cls, "check_preconditions", None) is FactBase.check_preconditions)


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _normalised(cls: type[FactBase], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The fact's arguments as pyinfra passes them to its command (defaults filled in), JSON-shaped."""
    command = cls().command
    merged = getcallargs(command, **kwargs) if callable(command) else dict(kwargs)
    merged.pop("self", None)
    return json.loads(json.dumps(merged, default=list))


def _key(cls: type, kwargs: dict[str, Any]) -> str:
    return _name(cls) + json.dumps(kwargs, sort_keys=True, separators=(",", ":"))


def _key_of(entry: dict[str, Any]) -> str:
    kwargs = entry.get("kwargs") or {}
    return str(entry.get("fact")) + json.dumps(kwargs, sort_keys=True, separators=(",", ":"))


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, dict) and isinstance(entry.get("kwargs"), dict)]


def _fact_class(name: str) -> type[FactBase] | None:
    module, _, qualname = str(name).partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError):
        return None
    return found if _cacheable(found) else None


@dataclass(frozen=True)
class Part:
    """One fact of a read-ahead: its key, class and arguments, and its shell command."""

    key: str
    cls: type[FactBase]
    kwargs: dict[str, Any]
    command: str


def parts_of(entries: list[dict[str, Any]]) -> list[Part]:
    """The read-ahead parts of a list of reads (unknown facts and arguments left out)."""
    parts = []
    for entry in entries:
        cls = _fact_class(entry.get("fact", ""))
        if cls is None:
            continue
        try:
            fact = cls()
            kwargs = _normalised(cls, entry["kwargs"])
            command = shell_command(fact.command, kwargs)
            required = _made(fact.requires_command, kwargs)
            required = _shell(required) if required else None
        except Exception as error:  # noqa: BLE001 - a list from an older version: read it on its own later
            logger.debug("read-ahead: %s left out: %s", entry.get("fact"), error)
            continue
        if required:
            command = (f"if command -v {required} >/dev/null 2>&1; then ( {command}\n); "
                       f"else echo '{_MISSING}'; fi")
        parts.append(Part(_key(cls, kwargs), cls, kwargs, command))
    return parts


def shell_command(command: Any, kwargs: dict[str, Any]) -> str:
    """A fact's command (its ``command`` method or string) for ``kwargs``, as shell text."""
    return _shell(_made(command, kwargs))


def _made(command: Any, kwargs: dict[str, Any]) -> Any:
    """A fact's command or required command, called with its arguments where it is a method."""
    return command(**kwargs) if callable(command) else command


def _shell(command: Any) -> str:
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    return str(command).strip()


def read_ahead_command(parts: list[Part], nonce: str) -> str:
    """One shell command running every part at once, each in its own subshell with its stderr left
    out and its answer kept in a private temporary folder; then each answer in turn, followed by a line
    with the part's index and exit status. The host spends the time of its slowest part, not the sum."""
    started = "".join(
        f'{{ ( {part.command}\n) >"$d/{index}" 2>/dev/null; echo $? >"$d/{index}.rc"; }} &\n'
        for index, part in enumerate(parts)
    )
    answered = "".join(
        f'cat "$d/{index}"; echo "### homelab-read-end {nonce} {index} $(cat "$d/{index}.rc")"\n'
        for index in range(len(parts))
    )
    # no temporary folder: no answers, and every part is read on its own when asked for
    return f'd=$(mktemp -d 2>/dev/null) || exit 0\n{started}wait\n{answered}rm -rf "$d"'


def split_answers(lines: list[str], nonce: str) -> dict[int, tuple[int, list[str]]]:
    """Part index -> (exit status, its stdout lines), from a read-ahead's output. A part's last line
    without a newline ends up before the end marker on the same line: it is split off."""
    answers: dict[int, tuple[int, list[str]]] = {}
    current: list[str] = []
    for line in lines:
        found = _END.match(line)
        if found is None or found["nonce"] != nonce:
            current.append(line)
            continue
        if found["tail"]:
            current.append(found["tail"])
        answers[int(found["index"])] = (int(found["rc"]), current)
        current = []
    return answers


class ReadAhead(FactBase[list[str]]):
    """The raw output of a read-ahead (:func:`read_ahead_command`); ``batch`` names the command
    registered for it, so that pyinfra's logs name the batch and not every command in it."""

    _commands: dict[str, str] = {}

    def command(self, batch: str) -> str:
        return self._commands.pop(batch)

    def process(self, output: list[str]) -> list[str]:
        return list(output)


def _read_ahead(host: Any, reads: HostReads) -> None:
    if reads.learned is None:
        return
    parts = [part for part in parts_of(_load(reads.learned)) if part.key not in reads.values]
    batch: list[Part] = []
    size = 0
    for part in parts:
        if batch and size + len(part.command) > MAX_COMMAND_BYTES:
            _run_batch(host, reads, batch)
            batch, size = [], 0
        batch.append(part)
        size += len(part.command) + 160
    if batch:
        _run_batch(host, reads, batch)


def _run_batch(host: Any, reads: HostReads, batch: list[Part]) -> None:
    nonce = secrets.token_hex(4)
    name = f"{nonce}-{len(batch)}"
    ReadAhead._commands[name] = read_ahead_command(batch, nonce)
    try:
        # a failed read-ahead fails no host: its facts are then read on their own, with their own errors
        output = host.get_fact(ReadAhead, batch=name, _ignore_errors=True)
    finally:
        ReadAhead._commands.pop(name, None)
    reads.commands += 1
    answers = split_answers(output or [], nonce)
    for index, part in enumerate(batch):
        status, lines = answers.get(index, (None, []))
        if status != 0:  # not run, or failed: read on its own when asked for (pyinfra's own errors)
            continue
        fact = part.cls()
        if lines == [_MISSING]:
            value = fact.default()
        elif not lines:
            value = fact.default()
        else:
            try:
                value = fact.process(lines)
            except Exception as error:  # noqa: BLE001 - read on its own when asked for
                logger.debug("read-ahead: %s not processed: %s", part.key, error)
                continue
        reads.values[part.key] = value
        reads.parts += 1
