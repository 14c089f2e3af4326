"""Plan a deploy file against pyinfra's `@fake` connector and list the exact commands per operation.

For the paths no lab host can run here (Fedora/RHEL, NVIDIA GPUs): the host's answers to the
fact commands are scripted (`fake_responses`, matched by substring), built from recorded or
documented output, and the commands each operation would run are read back from the plan.
"""

from __future__ import annotations

import re
from inspect import getfullargspec
from pathlib import Path
from typing import Any

from pyinfra.api import Config, Inventory, State
from pyinfra.api.command import FileUploadCommand, FunctionCommand, StringCommand
from pyinfra.api.connect import connect_all
from pyinfra.connectors.fake import FakeConnector
from pyinfra.connectors.util import CommandOutput, OutputLine
from pyinfra.context import ctx_config, ctx_host, ctx_inventory, ctx_state
from pyinfra_cli.util import load_deploy_file

from facts import reads
from operations.packages import ExplainedCommand

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "tests" / "facts" / "recorded"

SETTINGS = {
    "domain": "home.example.com",
    "tailscale_allowed_ips": "100.64.0.0/10",
    "tailscale_ip": "100.101.102.103",
    "pihole_password": "pihole-secret-value",
    "npm_admin_email": "admin@home.example.com",
    "npm_admin_password": "npm-secret-value",
    "open_webui_admin_email": "admin@home.example.com",
    "open_webui_admin_password": "webui-secret-value",
    "fake_delay": 0,
    "fake_delay_jitter": 0,
}


# a read-ahead (facts/reads.py): its parts, each started in the background, then their answers in turn
_PART = re.compile(
    r'\{ \( (?P<part>.*?)\n\) >"\$d/(?P<index>\d+)" 2>/dev/null; echo \$\? >"\$d/\d+\.rc"; \} &\n',
                   re.DOTALL)
_END = re.compile(r'echo "### homelab-read-end (?P<nonce>[0-9a-f]+) 0 ')
_answer_one = FakeConnector._lookup_response


def _answer(self: FakeConnector, command: str) -> tuple[bool, CommandOutput]:
    """The `@fake` host answers a read-ahead as a host does: each part on its own (its scripted
    response), each answer followed by its end line."""
    parts = list(_PART.finditer(command))
    end = _END.search(command)
    if not parts or end is None:
        return _answer_one(self, command)
    lines: list[OutputLine] = []
    for found in parts:
        status, output = _answer_one(self, found["part"])
        lines += [OutputLine("stdout", line) for line in output.stdout_lines]
        lines.append(OutputLine("stdout", f"### homelab-read-end {end['nonce']} {found['index']} "
                                          f"{0 if status else 1}"))
    return True, CommandOutput(lines)


FakeConnector._lookup_response = _answer


def recorded(name: str) -> list[str]:
    """A recorded output without its `# command:` / `# exit:` header lines."""
    lines = (RECORDED / name).read_text().splitlines()
    return [line for line in lines if not line.startswith(("# command:", "# exit:"))]


def os_release(text: str) -> str:
    return "/etc/os-release\n" + text.strip() + "\n---"


def os_release_file(name: str) -> str:
    """A documented os-release file from tests/facts/os-release, as the LinuxDistribution fact reads it."""
    return os_release((ROOT / "tests" / "facts" / "os-release" / name).read_text())


FEDORA_41 = os_release(
    'NAME="Fedora Linux"\nVERSION="41 (Server Edition)"\nID=fedora\nVERSION_ID=41\n'
    'VERSION_CODENAME=""\nPRETTY_NAME="Fedora Linux 41 (Server Edition)"'
)
DEBIAN_12 = os_release(
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian'
)


# sshd as a lab host runs it, without the deploy's drop-in (tests/facts/sshd.SshdSettings), for a
# plan whose responses do not say otherwise
SSHD_FACT = "command -v sshd"  # how a plan's responses name the answer to facts.sshd.SshdSettings
SSHD_STOCK = [
    "### homelab-sshd effective", "port 22", "permitrootlogin without-password", "passwordauthentication yes",
    "kbdinteractiveauthentication no", "### homelab-sshd pending", "### homelab-sshd drop-in",
]

# a 32 GiB, 16-CPU host, as facts.host.HostResources reads it
HOST_RESOURCES = ["MemTotal:       33554432 kB", "16"]

# the operations of the last plan() whose commands explain a failure in one line (package installs)
EXPLAINED: set[str] = set()
# every command the last plan() ran on its `@fake` host (the fact reads), in order
EXECUTED: list[str] = []


def plan(deploy: str, responses: dict[str, Any], data: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """Operation name -> the commands it would run, for one `@fake` host answering ``responses``."""
    EXPLAINED.clear()
    # the host's memory and CPUs (facts.host.HostResources), unless the case gives its own: last, as the
    # first matching response wins
    responses = {**responses, "/proc/meminfo": HOST_RESOURCES} if not any(
        "meminfo" in str(key) for key in responses) else responses
    if SSHD_FACT not in responses:
        responses = {**responses, SSHD_FACT: SSHD_STOCK}
    EXECUTED.clear()
    host_data = {**SETTINGS, **(data or {}), "fake_responses": responses}
    inventory = Inventory(([("@fake/server", host_data)], {}))
    state = State(inventory, Config())
    ctx_state.set(state)
    ctx_config.set(state.config)
    ctx_inventory.set(inventory)
    connect_all(state)
    load_deploy_file(state, str(ROOT / deploy))
    (host,) = list(inventory)
    EXECUTED.extend(host.connector.executed_commands)
    reads.save(state)  # the list of this plan's reads, for a next plan of the same file to read ahead
    commands: dict[str, list[str]] = {}
    with ctx_host.use(host):
        for op_hash in state.get_op_order():
            meta = state.get_op_meta(op_hash)
            op_data = state.get_op_data_for_host(host, op_hash)
            name = ", ".join(sorted(meta.names))
            assert name not in commands, f"two operations named {name!r}: give them distinct names"
            made = list(op_data.command_generator())
            commands[name] = [_text(command) for command in made]
            if any(isinstance(command, ExplainedCommand) for command in made):
                EXPLAINED.add(name)
    return commands


def _text(command: Any) -> str:
    if isinstance(command, FunctionCommand):
        # pyinfra hands a callback its state and host only when its parameters have exactly those
        # names; any other parameters get nothing and the run fails with a TypeError
        parameters = getfullargspec(command.function).args
        takes_both = "state" in parameters and "host" in parameters
        assert takes_both or len(parameters) == len(command.args) + len(command.kwargs), (
            f"{command.function.__name__}: parameters {parameters}: name them (state, host) or take none"
        )
        return "FunctionCommand"
    if isinstance(command, ExplainedCommand):  # its wrapping shell is tested in test_package_failures
        return command.command
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    if isinstance(command, FileUploadCommand):
        source = command.src
        body = source.getvalue() if hasattr(source, "getvalue") else f"<{source}>"
        return f"upload {command.dest}:\n{body}"
    return f"{type(command).__name__}"
