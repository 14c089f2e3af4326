"""The pyinfra operation ollama.models, run as pyinfra runs it (generator under a fake host), with the
deploy's own client against the Ollama stand-in and the lab's model registry, both in-process: the
plan reads /api/tags once, a present model is never pulled again, --dry pulls nothing, a removed model
stays unless pruned, a pull's progress is logged, a failure is one line naming the model and Ollama's
text."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import FunctionCommand
from pyinfra.context import ctx_host, ctx_state
from pyinfra_testing.util import FakeState, create_host

from lab.doubles import model_registry
from lab.doubles.ollama_double import OllamaDouble, serve
from operations import ollama
from operations.clients import ServiceUnreachable
from operations.clients.ollama import OllamaClient
from operations.ollama import plan_models


class Output:
    """The host at execute time: the lines an operation reports on it."""

    print_prefix = "[server] "

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log_styled(self, message: str, **_: Any) -> None:
        self.lines.append(message)


def run_op(**kwargs: Any) -> tuple[list[Any], str | None]:
    host = create_host(FakeState())
    with ctx_state.use(FakeState()), ctx_host.use(host):
        commands = list(ollama.models._inner(**kwargs))
    return commands, host.noop_description


def execute(commands: list[Any], output: Output | None = None) -> list[Any]:
    results = []
    for command in commands:
        assert isinstance(command, FunctionCommand)
        results.append(command.execute(FakeState(), output or Output(), {}))
    return results


class Counting(OllamaClient):
    calls: list[str] = []

    def tags(self) -> list[dict[str, Any]]:
        Counting.calls.append("tags")
        return super().tags()

    def pull(self, model: str, **kwargs: Any) -> None:
        Counting.calls.append(f"pull {model}")
        super().pull(model, **kwargs)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, OllamaDouble, Callable[[], OllamaClient]]]:
    Counting.calls = []
    double = OllamaDouble(tmp_path / "models")
    with model_registry.serve() as registry, serve(double) as served:
        host = f"127.0.0.1:{registry.port}"
        yield host, double, lambda: Counting(served.url, timeout=10)


def test_missing_models_are_pulled_once_and_a_second_run_changes_nothing(lab):
    host, double, factory = lab
    tiny, small = f"{host}/library/tiny:1", f"{host}/library/small:1"
    sizes = {tiny: model_registry.model_size("library/tiny:1"), small: None}
    commands, _ = run_op(client_factory=factory, models=[tiny, small], insecure=[host], size_of=sizes.get)
    names = [c.function.__name__ for c in commands]
    assert names == [f"ollama: pull {tiny} (98.5 KB)", f"ollama: pull {small}"]
    assert Counting.calls == ["tags"]  # planning reads once, pulls nothing (--dry)
    assert double.tags() == {"models": []}
    assert execute(commands) == [True, True]
    assert sorted(m["name"] for m in double.tags()["models"]) == sorted([tiny, small])
    Counting.calls = []
    assert run_op(client_factory=factory, models=[small, tiny.upper()], insecure=[host]) == (
        [], f"Ollama models: {small}, {tiny.upper()} present")
    assert Counting.calls == ["tags"]


def test_a_model_taken_off_the_list_stays_unless_pruned(lab):
    host, double, factory = lab
    tiny, small = f"{host}/library/tiny:1", f"{host}/library/small:1"
    execute(run_op(client_factory=factory, models=[tiny, small], insecure=[host])[0])
    assert run_op(client_factory=factory, models=[tiny], insecure=[host])[0] == []
    commands, _ = run_op(client_factory=factory, models=[tiny], insecure=[host], prune=True)
    assert [c.function.__name__ for c in commands] == [f"ollama: delete {small} (not in the list, prune)"]
    assert execute(commands) == [True]
    assert [m["name"] for m in double.tags()["models"]] == [tiny]


def test_a_failed_pull_is_one_line_naming_the_model_and_ollamas_text(lab):
    host, double, factory = lab
    missing, broken = f"{host}/library/nope:1", f"{host}/library/broken:1"
    output = Output()
    commands, _ = run_op(client_factory=factory, models=[missing, broken], insecure=[host])
    assert execute(commands, output) == [False, False]
    assert output.lines[0] == f"ollama: pull {missing} failed: pull model manifest: file does not exist"
    mismatch = "digest mismatch, file must be downloaded again: want sha256:" + "0" * 64 + ", got sha256:"
    assert output.lines[1].startswith(f"ollama: pull {broken} failed: {mismatch}")
    assert len(output.lines) == 2 and double.tags() == {"models": []}


def test_a_pull_without_insecure_asks_https_and_fails_cleanly(lab):
    host, _, factory = lab
    output = Output()
    commands, _ = run_op(client_factory=factory, models=[f"{host}/library/tiny:1"])
    assert execute(commands, output) == [False]
    assert output.lines[0].startswith(f"ollama: pull {host}/library/tiny:1 failed: pull model manifest: Get "
                                      f'"https://{host}/')


def test_progress_is_logged_while_pulling(lab, caplog):
    host, _, factory = lab
    commands, _ = run_op(client_factory=factory, models=[f"{host}/library/tiny:1"], insecure=[host],
                         progress_interval=0)
    with caplog.at_level(logging.INFO, logger="pyinfra"):
        assert execute(commands) == [True]
    said = [record.getMessage() for record in caplog.records]
    assert f"[server] ollama: {host}/library/tiny:1: pulling manifest" in said
    assert any("KB of" in line and "%)" in line for line in said), said
    assert said[-1].endswith(": success")


def test_a_quick_pull_says_its_start_and_its_end_only(lab, caplog):
    host, _, factory = lab
    commands, _ = run_op(client_factory=factory, models=[f"{host}/library/tiny:1"], insecure=[host])
    with caplog.at_level(logging.INFO, logger="pyinfra"):
        assert execute(commands) == [True]
    assert [record.getMessage() for record in caplog.records] == [
        f"[server] ollama: {host}/library/tiny:1: pulling manifest",
        f"[server] ollama: {host}/library/tiny:1: success",
    ]


def test_nothing_configured_asks_nothing(lab):
    _, _, factory = lab
    assert run_op(client_factory=factory, models=[]) == ([], "Ollama models: none configured")
    assert Counting.calls == []


def test_an_ollama_that_does_not_answer_yet_is_read_when_the_run_gets_there(lab):
    host, double, factory = lab
    tiny = f"{host}/library/tiny:1"
    answers = {"up": False}

    def later() -> OllamaClient:
        if not answers["up"]:
            raise ServiceUnreachable("no answer from Ollama: its container is not running")
        return factory()

    commands, _ = run_op(client_factory=later, models=[tiny], insecure=[host])
    assert [c.function.__name__ for c in commands] == [f"ollama: pull {tiny} (Ollama starts in this run)"]
    answers["up"] = True
    assert execute(commands) == [True]
    assert Counting.calls == ["tags", f"pull {tiny}"]
    assert [m["name"] for m in double.tags()["models"]] == [tiny]


def test_the_plan_compares_names_without_case():
    listed = [{"name": "llama3.2:latest"}, {"name": "Registry.LAN:5000/library/tiny:1"}]
    plan = plan_models(listed, ["LLaMA3.2", "registry.lan:5000/library/tiny:1", "qwen2.5:7b"], prune=True)
    assert plan.pull == ("qwen2.5:7b",) and plan.delete == ()
    assert plan.present == ("LLaMA3.2:latest", "registry.lan:5000/library/tiny:1")


def test_the_plan_says_what_it_would_pull_and_its_size(lab, caplog):
    host, _, factory = lab
    tiny = f"{host}/library/tiny:1"
    with caplog.at_level(logging.INFO, logger="pyinfra"):
        run_op(client_factory=factory, models=[tiny], insecure=[host],
               size_of=lambda model: model_registry.model_size("library/tiny:1"))
    assert [record.getMessage() for record in caplog.records] == [f"Ollama models: pull {tiny} (98.5 KB)"]


def test_an_ollama_gone_at_execute_time_is_one_line(lab):
    host, _, factory = lab
    tiny = f"{host}/library/tiny:1"
    gone = {"now": False}

    def flaky() -> OllamaClient:
        if gone["now"]:
            raise ServiceUnreachable("no answer from Ollama: its container is not running on the self-hosted "
                                     "network")
        return factory()

    commands, _ = run_op(client_factory=flaky, models=[tiny], insecure=[host])
    gone["now"] = True
    output = Output()
    assert execute(commands, output) == [False]
    assert output.lines == [f"ollama: pull {tiny} failed: no answer from Ollama: its container is not "
                            "running on the self-hosted network"]
