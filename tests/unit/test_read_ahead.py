"""facts/reads.py: a read-ahead runs every part at once in a real shell and gives each part back its
own answer and exit status; the list of reads is kept per deploy file and host; a part that failed
is left for its own read."""

from __future__ import annotations

import json
import subprocess
import textwrap

from pyinfra.api import Config, FactBase, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.operations import run_ops
from pyinfra.context import ctx_config, ctx_inventory, ctx_state
from pyinfra_cli.util import load_deploy_file

from facts import reads


class Lines(FactBase):
    def command(self, text: str) -> str:
        return f"printf '{text}'"

    def process(self, output):
        return list(output)


class Fails(FactBase):
    command = "echo partial; exit 3"

    def process(self, output):
        return output


class NeedsProgram(FactBase):
    requires_command = "no-such-program-here"
    command = "no-such-program-here --list"

    @staticmethod
    def default():
        return {"absent": True}


def _entries(*items):
    return [{"fact": f"{cls.__module__}:{cls.__qualname__}", "kwargs": kwargs} for cls, kwargs in items]


def _run(parts, nonce="0a1b2c3d"):
    proc = subprocess.run(["sh", "-c", reads.read_ahead_command(parts, nonce)], capture_output=True,
                          text=True, check=True)
    return reads.split_answers(proc.stdout.splitlines(), nonce)


def test_every_part_answers_with_its_own_lines_and_status_even_without_a_last_newline():
    parts = reads.parts_of(_entries((Lines, {"text": "a\\nb\\n"}), (Lines, {"text": "no newline"}),
                                    (Fails, {}), (NeedsProgram, {})))
    assert [part.cls for part in parts] == [Lines, Lines, Fails, NeedsProgram]
    answers = _run(parts)
    assert answers[0] == (0, ["a", "b"])
    assert answers[1] == (0, ["no newline"])
    assert answers[2] == (3, ["partial"])
    assert answers[3] == (0, ["##PYINFRA_NOCMD##"])


def test_a_line_ending_like_an_answer_of_another_read_ahead_stays_a_line():
    parts = reads.parts_of(_entries((Lines, {"text": "### homelab-read-end ffffffff 0 0\\n"})))
    assert _run(parts, nonce="0a1b2c3d") == {0: (0, ["### homelab-read-end ffffffff 0 0"])}


def test_unknown_facts_and_arguments_of_an_older_version_are_left_out():
    entries = [{"fact": "facts.nowhere:Gone", "kwargs": {}}, {"fact": "json:dumps", "kwargs": {}},
               *_entries((Lines, {"wrong": 1}), (Lines, {"text": "x"}))]
    assert [part.kwargs for part in reads.parts_of(entries)] == [{"text": "x"}]


def test_the_list_is_kept_per_deploy_file_and_host(tmp_path, monkeypatch):
    monkeypatch.setenv(reads.ENV, str(tmp_path))

    class State:
        current_exec_filename = "deploys/server.py"

    class Host:
        name = "@ssh/server-1"

    one = reads._learned_file(State(), Host())
    State.current_exec_filename = "deploys/validate.py"
    other = reads._learned_file(State(), Host())
    assert one.parent == other.parent == tmp_path and one != other
    assert one.name.startswith("_ssh_server-1-server-")
    monkeypatch.setenv(reads.ENV, "off")
    assert reads._learned_file(State(), Host()) is None


def test_the_list_holds_which_facts_were_read_never_a_value(tmp_path, monkeypatch):
    monkeypatch.setenv(reads.ENV, str(tmp_path))
    learned = tmp_path / "list.json"
    host_reads = reads.HostReads(learned=learned)
    host_reads.asked = {"k": {"fact": "facts.system:Directories", "kwargs": {"paths": ["/srv"]}}}
    host_reads.values = {"k": {"/srv": {"mode": 755, "secret-looking": "value"}}}

    class State:
        failed_hosts: set = set()
        __dict__ = {"homelab_reads": {"h": host_reads}}

    reads.save(State())
    assert json.loads(learned.read_text()) == [
        {"fact": "facts.system:Directories", "kwargs": {"paths": ["/srv"]}}]
    assert "value" not in learned.read_text()


DEPLOY = """
from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.operations import server

from facts.reads import read_fact


class Text(FactBase):
    def command(self, path):
        return f"cat {path}"

    def process(self, output):
        return " ".join(output)


@operation()
def note(path, out):
    seen = read_fact(Text, path=path, host=host)
    yield f"echo {seen} >> {out}"


note(name="before", path=PATH, out=OUT)
note(name="before, again", path=PATH, out=OUT)
server.shell(name="change", commands=[f"echo two > {PATH}"])
note(name="after", path=PATH, out=OUT)
"""


def _run_locally(deploy, tmp_path):
    inventory = Inventory((["@local"], {}))
    state = State(inventory, Config())
    ctx_state.set(state)
    ctx_config.set(state.config)
    ctx_inventory.set(inventory)
    connect_all(state)
    load_deploy_file(state, str(deploy))
    run_ops(state)
    return state


def test_a_fact_is_shared_until_an_operation_has_run_a_command_then_read_again(tmp_path, monkeypatch):
    monkeypatch.setenv(reads.ENV, str(tmp_path / "lists"))
    watched, out = tmp_path / "watched", tmp_path / "seen"
    watched.write_text("one\n")
    deploy = tmp_path / "deploy.py"
    deploy.write_text(f"PATH = {str(watched)!r}\nOUT = {str(out)!r}\n" + textwrap.dedent(DEPLOY))
    state = _run_locally(deploy, tmp_path)
    (host,) = list(state.inventory)
    # "before" read it once, shared with "before, again", planned and executed; "after" started once
    # "change" had run its command, so it read the file again
    assert out.read_text().split() == ["one", "one", "two"]
    assert run_reads(state)[host.name].dirty


def run_reads(state):
    return reads.run_reads(state)


TWO_HOSTS = """
from pyinfra import host
from pyinfra.api import operation
from pyinfra.operations import server


@operation()
def nothing():
    return
    yield


nothing(name="nothing on both")
if host.name == "@fake/b":
    server.shell(name="on b only", commands=["true"])
server.shell(name="on both, later", commands=["true"])
"""


def test_an_operation_only_other_hosts_run_is_nothing_run_here(tmp_path, monkeypatch):
    monkeypatch.setenv(reads.ENV, str(tmp_path / "lists"))
    deploy = tmp_path / "deploy.py"
    deploy.write_text(TWO_HOSTS)
    quick = {"fake_delay": 0, "fake_delay_jitter": 0}
    inventory = Inventory(([("@fake/a", quick), ("@fake/b", quick)], {}))
    state = State(inventory, Config())
    ctx_state.set(state)
    ctx_config.set(state.config)
    ctx_inventory.set(inventory)
    connect_all(state)
    for host in inventory:  # each host has its reads (as after a first read_fact)
        reads._host_reads(host)
    load_deploy_file(state, str(deploy))
    run_ops(state)
    assert not state.failed_hosts
    found = reads.run_reads(state)
    # a: nothing had run when its last operation started; b: "on b only" had
    assert not found["@fake/a"].dirty and found["@fake/b"].dirty
