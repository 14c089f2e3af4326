"""A GPU host whose driver fails is never turned into a CPU host silently.

The host: Fedora after a kernel update that akmods did not follow (nvidia-smi exit 9), with
Docker's nvidia runtime, the toolkit and a CDI spec from an earlier deploy
(tests/facts/gpu.NvidiaGpus/documented-akmod-not-rebuilt-after-kernel-update.json).
"""

from __future__ import annotations

import json

import pytest
from harness import ROOT, os_release_file, plan

from deploys.library.context import DeployError

DAEMON_JSON = "Docker engine | daemon.json (log rotation, live-restore, NVIDIA runtime when a GPU is present)"


def gpu(case: str) -> list[str]:
    return json.loads((ROOT / "tests/facts/gpu.NvidiaGpus" / f"{case}.json").read_text())["output"]


BROKEN = {
    "ls -pdL *-release": os_release_file("documented-fedora-41"),
    "uname -m": "x86_64",
    "rpm --queryformat": [],
    "pyinfra-gpu": gpu("documented-akmod-not-rebuilt-after-kernel-update"),
}


@pytest.mark.parametrize("deploy", ["deploys/infrastructure.py", "deploys/docker.py", "deploys/comfyui.py",
                                    "deploys/ollama.py", "deploys/server.py"])
def test_the_deploy_refuses_naming_host_error_and_remedy(deploy):
    with pytest.raises(DeployError) as refused:
        plan(deploy, BROKEN)
    message = str(refused.value)
    assert message.startswith("@fake/server: nvidia-smi fails (NVIDIA-SMI has failed because it couldn't "
                              "communicate with the NVIDIA driver.")
    assert "the nvidia kernel module is built for 6.11.4-301.fc41.x86_64 but not for the running kernel " \
           "6.12.5-200.fc41.x86_64" in message
    assert "`akmods --force --kernels 6.12.5-200.fc41.x86_64`" in message
    assert message.endswith("fix the driver and run it again, or set HOMELAB_GPU_DOWNGRADE=allow to deploy "
                            "without the GPU")


def test_services_that_use_no_gpu_still_deploy():
    ops = plan("deploys/nginx.py", BROKEN)
    assert ops["Compose services | nginx-proxy-manager: compose project"]


def test_downgrade_allowed_explicitly_drops_the_runtime_and_runs_comfyui_on_the_cpu():
    ops = plan("deploys/infrastructure.py", BROKEN, {"gpu_downgrade": "allow"})
    daemon = json.loads(next(c for c in ops[DAEMON_JSON] if c.startswith("upload ")).split(":\n", 1)[1])
    assert daemon == {"live-restore": True, "log-driver": "json-file",
                      "log-opts": {"max-file": "3", "max-size": "10m"}}
    assert not any(name.startswith("NVIDIA container toolkit | ") for name in ops)
    comfy = plan("deploys/comfyui.py", BROKEN, {"gpu_downgrade": "allow"})
    (compose,) = [c for c in comfy["Compose services | comfyui: compose project"] if "compose.yaml:" in c]
    assert "CLI_ARGS: --cpu" in compose and "driver: nvidia" not in compose


def test_a_working_gpu_keeps_the_runtime_and_comfyui_on_the_gpu():
    h200 = {**BROKEN, "pyinfra-gpu": gpu("recorded-h200-fact-command")}
    ops = plan("deploys/infrastructure.py", h200)
    assert '"nvidia": {' in next(c for c in ops[DAEMON_JSON] if c.startswith("upload "))
    comfy = plan("deploys/comfyui.py", h200)
    (compose,) = [c for c in comfy["Compose services | comfyui: compose project"] if "compose.yaml:" in c]
    assert "CLI_ARGS: ''" in compose and "driver: nvidia" in compose


def test_no_gpu_ever_set_up_is_a_cpu_host_as_before():
    """nvidia-smi missing and nothing else of a GPU: the AI services run on the CPU, with a warning."""
    cpu = {**BROKEN, "pyinfra-gpu": gpu("recorded-debian12-lab-no-gpu")}
    comfy = plan("deploys/comfyui.py", cpu)
    (compose,) = [c for c in comfy["Compose services | comfyui: compose project"] if "compose.yaml:" in c]
    assert "CLI_ARGS: --cpu" in compose
