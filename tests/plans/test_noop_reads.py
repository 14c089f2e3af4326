"""How many remote commands a no-op run reads the host with, pinned: each deploy file planned against a
deployed lab host's recorded answers (tests/fixtures/noop-host, what `deploys/server.py` reads on a
Debian 12 lab host with the stack deployed) plans nothing, reads each subject once (the exact counts
below: a read added per service or per folder fails here), and its next run reads all of it in one
remote command (facts/reads.py) and plans the same."""

from __future__ import annotations

import json

import harness
import pytest
from harness import EXECUTED, ROOT, plan
from pyinfra.connectors.util import CommandOutput

from lab.data import LAB_DATA

RECORDED = json.loads((ROOT / "tests" / "fixtures" / "noop-host" / "lab-debian12.json").read_text())
# `@fake` is no SSH login: the deploy is told what the lab's login by key implies (password logins off)
DATA = {**LAB_DATA, **RECORDED["settings"], "ssh_password_logins": "false"}
DIRECTORIES = "for p in "  # facts.system.Directories: the recorded folders answer any list of them


def deployed() -> dict[str, list[str]]:
    """The recorded answers, longest command first (the first that a command contains answers it),
    and every recorded data folder for a Directories read of fewer folders (a deploy file of one tag)."""
    answers = sorted(RECORDED["answers"], key=lambda answer: -len(answer["command"]))
    folders = [line for answer in answers if answer["command"].startswith(DIRECTORIES)
               for line in answer["stdout"]]
    return {**{answer["command"]: answer["stdout"] for answer in answers}, DIRECTORIES: folders}


# deploy file -> the remote commands of its no-op run without a list of reads: one per subject
NO_OP_READS = {
    "deploys/infrastructure.py": 14,
    "deploys/networking.py": 9,
    "deploys/docker.py": 8,
    "deploys/security_updates.py": 6,
    "deploys/services.py": 9,  # ... + a compose project's files per service (two here)
    "deploys/nginx.py": 8,
    "deploys/pihole.py": 8,
    "deploys/monitoring.py": 5,
}


@pytest.mark.parametrize("deploy", sorted(NO_OP_READS))
def test_a_no_op_plan_reads_each_subject_once_then_everything_in_one_command(deploy):
    first = plan(deploy, deployed(), DATA)
    assert {name: commands for name, commands in first.items() if commands} == {}, "not a no-op plan"
    assert len(EXECUTED) == len(set(EXECUTED)), "a subject read twice"
    assert len(EXECUTED) == NO_OP_READS[deploy], EXECUTED
    again = plan(deploy, deployed(), DATA)
    assert again == first
    (read_ahead,) = EXECUTED
    assert read_ahead.startswith("d=$(mktemp -d")


def test_each_service_adds_one_read_of_its_project_files():
    one = plan("deploys/nginx.py", deployed(), DATA)
    nginx = list(EXECUTED)
    both = plan("deploys/services.py", deployed(), DATA)
    core = list(EXECUTED)
    assert one and both
    assert len(core) == len(nginx) + 1, core  # the data folders are still one read, of more folders
    assert [command for command in core if "cd /opt/homelab/" in command] == [
        command.replace("nginx-proxy-manager", service) for command in nginx if "cd /opt/homelab/" in command
        for service in ("nginx-proxy-manager", "pihole")]


def test_a_failed_read_ahead_fails_no_host_and_each_fact_is_then_read_on_its_own(monkeypatch):
    deploy = "deploys/networking.py"
    first = plan(deploy, deployed(), DATA)
    answer = harness.FakeConnector._lookup_response

    def refuse_read_ahead(self, command):
        if command.startswith("d=$(mktemp -d"):
            return False, CommandOutput([])
        return answer(self, command)

    monkeypatch.setattr(harness.FakeConnector, "_lookup_response", refuse_read_ahead)
    again = plan(deploy, deployed(), DATA)
    assert again == first
    assert len(EXECUTED) == 1 + NO_OP_READS[deploy]
