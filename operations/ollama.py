"""
Ollama's models, through Ollama's own API: the configured ones pulled, the others left alone (or
deleted with ``prune``).

What Ollama holds is read once while the plan is made (``/api/tags``: read-only, so ``--dry`` tells
the truth); a model is present when a listed name is the configured one without case (Ollama
compares names so); a present model is never pulled again (a pull of a present model contacts the
registry and rewrites its manifest). Each pull is one command at execute time, streamed: a line every
few seconds says how far it got, and a failure (Ollama's HTTP error, or the ``{"error": …}`` line it
streams after HTTP 200) fails the operation with one line naming the model and Ollama's text.

How the API is reached is the caller's business: the operation takes a *client factory*.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.exceptions import OperationValueError

from operations.clients import ServiceUnreachable, read_while_planning
from operations.clients.ollama import OllamaClient, OllamaError, parse_model_name, shown_size
from operations.failures import named, refuse, report

ClientFactory = Callable[[], OllamaClient]
# what fails an operation with one line: Ollama's refusal, or no answer (no container, no tunnel)
FAILURES = (OllamaError, ServiceUnreachable)
PROGRESS_INTERVAL = 5.0  # seconds between two progress lines of one pull


@dataclass(frozen=True)
class ModelsPlan:
    """What to do: ``pull`` the missing models, ``delete`` the ones not wanted (with prune)."""

    pull: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    sizes: dict[str, int | None] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return bool(self.pull or self.delete)

    def describe_pull(self, model: str) -> str:
        size = self.sizes.get(model)
        return f"ollama: pull {model}" + (f" ({shown_size(size)})" if size is not None else "")

    def describe(self) -> str:
        if not self.changes:
            return f"Ollama models: {', '.join(self.present) or 'none wanted'} present"
        parts = [self.describe_pull(model).removeprefix("ollama: ") for model in self.pull]
        parts += [f"delete {model} (not in the list, prune)" for model in self.delete]
        return "Ollama models: " + "; ".join(parts)


def plan_models(listed: Sequence[Mapping[str, Any]], wanted: Sequence[str], prune: bool = False,
                sizes: Mapping[str, int | None] | None = None) -> ModelsPlan:
    """Compare what ``/api/tags`` lists with the wanted names (shortest form, as the settings give them)."""
    have = {str(item.get("name") or item.get("model") or ""): item for item in listed}
    have_keys = {name.lower(): name for name in have if name}
    wanted_keys = {parse_model_name(model).key: parse_model_name(model).shown for model in wanted}
    pull = tuple(model for key, model in wanted_keys.items() if key not in have_keys)
    present = tuple(model for key, model in wanted_keys.items() if key in have_keys)
    delete = tuple(name for key, name in have_keys.items() if prune and key not in wanted_keys)
    return ModelsPlan(pull=pull, delete=delete, present=present, sizes=dict(sizes or {}))


class _Progress:
    """Logs a pull's progress on the host's output: its start, its end, and in between at most every
    ``interval`` seconds."""

    def __init__(self, target: Any, model: str, interval: float) -> None:
        self.target, self.model, self.interval = target, model, interval
        self.last = time.monotonic()

    def __call__(self, line: Mapping[str, Any]) -> None:
        now = time.monotonic()
        status = str(line.get("status") or "")
        if status not in ("pulling manifest", "success") and now - self.last < self.interval:
            return
        self.last = now
        total, completed = line.get("total"), line.get("completed") or 0
        how_far = ""
        if total:
            share = 100 * int(completed) // int(total)
            how_far = f": {shown_size(int(completed))} of {shown_size(int(total))} ({share}%)"
        logger.info(f"{getattr(self.target, 'print_prefix', '')}ollama: {self.model}: {status}{how_far}")


def _pull(client_factory: ClientFactory, model: str, insecure: bool, description: str,
          interval: float) -> FunctionCommand:
    def apply(state: Any, host: Any) -> bool:
        try:
            client_factory().pull(model, insecure=insecure, progress=_Progress(host, model, interval))
        except FAILURES as error:
            return report(host, f"ollama: pull {model} failed: {error}")
        return True

    return FunctionCommand(named(apply, description), (), {})


def _delete(client_factory: ClientFactory, model: str) -> FunctionCommand:
    def apply(state: Any, host: Any) -> bool:
        try:
            client_factory().delete(model)
        except FAILURES as error:
            return report(host, f"ollama: delete {model} failed: {error}")
        return True

    return FunctionCommand(named(apply, f"ollama: delete {model} (not in the list, prune)"), (), {})


def _when_ready(client_factory: ClientFactory, wanted: Sequence[str], prune: bool,
                insecure: Callable[[str], bool], interval: float) -> FunctionCommand:
    """Planned while Ollama did not answer (it starts in this run): read once it answers, then pull
    what is missing (and prune)."""

    def apply(state: Any, host: Any) -> bool:
        try:
            plan = plan_models(client_factory().tags(), wanted, prune)
        except FAILURES as error:
            return report(host, f"ollama: cannot read the models Ollama holds: {error}")
        for model in plan.pull:
            command = _pull(client_factory, model, insecure(model), plan.describe_pull(model), interval)
            if not command.execute(state, host, {}):
                return False
        for model in plan.delete:
            if not _delete(client_factory, model).execute(state, host, {}):
                return False
        return True

    what = "pull " + ", ".join(wanted) + (" and delete the others" if prune else "")
    return FunctionCommand(named(apply, f"ollama: {what} (Ollama starts in this run)"), (), {})


def _announce(text: str) -> None:
    """Say what the run will change while planning: ``--dry`` lists the models it would pull."""
    if not host.state.is_executing:
        logger.info(f"{host.print_prefix}{text}")


@operation()
def models(
    client_factory: ClientFactory,
    models: Sequence[str],
    prune: bool = False,
    insecure: Callable[[str], bool] | Sequence[str] = (),
    size_of: Callable[[str], int | None] | None = None,
    progress_interval: float = PROGRESS_INTERVAL,
):
    """
    Make Ollama hold ``models``: pull the missing ones through its API; with ``prune``, delete the ones
    it holds that are not listed.

    + client_factory: callable returning an ``OllamaClient``
    + models: model names (``llama3.2``, ``qwen2.5-coder:7b``, ``host:port/namespace/model:tag``)
    + prune: delete every model not in ``models``
    + insecure: the registry hosts pulled from over plain HTTP, or a callable telling it per model
    + size_of: callable giving a model's download size in bytes (or ``None``), for the plan's text
    + progress_interval: seconds between two progress lines of a pull

    **Example:**

    .. code:: python

        ollama.models(
            name="Ollama models",
            client_factory=make_ollama_client,
            models=["llama3.2:3b", "qwen2.5-coder:7b"],
        )
    """
    try:
        wanted = [parse_model_name(str(model)).shown for model in models]
    except ValueError as error:
        raise OperationValueError(f"models: {error}") from None
    if callable(insecure):
        is_insecure = insecure
    else:
        hosts = {str(each).lower() for each in insecure}

        def is_insecure(model: str) -> bool:
            return parse_model_name(model).host.lower() in hosts

    if not wanted and not prune:
        host.noop("Ollama models: none configured")
        return
    try:
        reachable, listed = read_while_planning(lambda: client_factory().tags(), host.state.is_executing)
    except FAILURES as error:
        yield from refuse(f"ollama: cannot read the models Ollama holds: {error}")
        return
    if not reachable:
        _announce(f"Ollama models: pull {', '.join(wanted)} (those missing, once Ollama answers)")
        yield _when_ready(client_factory, wanted, prune, is_insecure, progress_interval)
        return
    missing = plan_models(listed, wanted, prune).pull
    sizes = {model: size_of(model) for model in missing} if size_of is not None else {}
    plan = plan_models(listed, wanted, prune, sizes)
    if not plan.changes:
        host.noop(plan.describe())
        return
    _announce(plan.describe())
    for model in plan.pull:
        yield _pull(client_factory, model, is_insecure(model), plan.describe_pull(model), progress_interval)
    for model in plan.delete:
        yield _delete(client_factory, model)
