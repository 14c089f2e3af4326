"""Facts about NVIDIA GPUs, the driver's CUDA version and Docker's NVIDIA runtime."""

from __future__ import annotations

import json
import re
from typing import Any

from pyinfra.api import FactBase

from facts.sections import split_sections

QUERY_FIELDS = "index,name,uuid,memory.total,memory.used,driver_version"

# Section markers: one shell command prints every part, process() splits on these.
_MARK = "### pyinfra-gpu "
_UNAVAILABLE = {"", "[N/A]", "N/A", "[Not Supported]", "Not Supported"}


def _value(text: str) -> str | None:
    text = text.strip()
    return None if text in _UNAVAILABLE else text


def _int_value(text: str) -> int | None:
    value = _value(text)
    return int(value) if value is not None and value.isdigit() else None


def _parse_gpu_line(line: str) -> dict[str, Any]:
    index, name, uuid, total, used, driver = (part.strip() for part in line.split(",", 5))
    return {
        "index": int(index),
        "name": _value(name),
        "uuid": _value(uuid),
        "memory_total_mib": _int_value(total),
        "memory_used_mib": _int_value(used),
        "driver_version": _value(driver),
    }


def _parse_gpus(query: list[str], exit_status: str) -> tuple[list[dict[str, Any]], str | None]:
    lines = [line for line in query if line.strip()]
    if exit_status != "0":
        return [], " ".join(line.strip() for line in lines) or f"nvidia-smi exited {exit_status}"
    return [_parse_gpu_line(line) for line in lines if line.count(",") >= 5], None


def _parse_cuda(lines: list[str]) -> str | None:
    for line in lines:
        match = re.search(r"CUDA Version\s*:\s*([0-9][0-9.]*)", line)
        if match:
            return match.group(1)
    return None


def _parse_runtime(lines: list[str]) -> bool:
    try:
        runtimes = json.loads("".join(lines) or "null")
    except json.JSONDecodeError:
        return False
    return isinstance(runtimes, dict) and "nvidia" in runtimes


def _counted(lines: list[str]) -> bool:
    """``grep -c`` printed a count above zero."""
    return any(line.strip().isdigit() and int(line.strip()) > 0 for line in lines)


def _kernel_of(path: str) -> str | None:
    """``/lib/modules/6.11.4-301.fc41.x86_64/extra/nvidia/nvidia.ko.xz`` -> the kernel release."""
    parts = path.strip().split("/")
    return parts[parts.index("modules") + 1] if "modules" in parts[:-1] else None


def _parse_toolkit(lines: list[str]) -> str | None:
    for line in lines:
        match = re.search(r"version\s+v?([0-9][0-9A-Za-z.+~-]*)", line)
        if match:
            return match.group(1)
    return None


class NvidiaGpus(FactBase[dict[str, Any]]):
    """
    Returns the NVIDIA GPUs, the CUDA version the driver supports, whether Docker has the
    ``nvidia`` runtime and the NVIDIA Container Toolkit version, and what shows that the host was
    set up for a GPU even when the driver fails (nvidia runtime in daemon.json, CDI specs, the
    nvidia kernel module per kernel, whether it is loaded), read in one command.

    .. code:: python

        {
            "gpus": [
                {
                    "index": 0,
                    "name": "NVIDIA H200",
                    "uuid": "GPU-3ac6…",
                    "memory_total_mib": 143771,
                    "memory_used_mib": 0,
                    "driver_version": "580.159.04",
                },
            ],
            "cuda_version": "13.0",
            "docker_nvidia_runtime": False,
            "toolkit_version": None,
            "driver_error": None,
            "daemon_json_nvidia": False,
            "cdi_specs": [],
            "kernel": "6.8.0-86-generic",
            "module_kernels": ["6.8.0-86-generic"],
            "module_loaded": True,
        }

    No ``nvidia-smi`` on the host gives no GPUs; an installed ``nvidia-smi`` that cannot talk
    to the driver (exit 9) also gives no GPUs, with its message in ``driver_error``. Fields that
    read ``[N/A]`` or ``[Not Supported]`` are ``None``. Missing tools never fail the host.
    ``module_kernels`` lists the kernel releases under ``/lib/modules`` that have an
    ``nvidia.ko*`` (akmod, DKMS or packaged); ``module_loaded`` reads ``/proc/driver/nvidia``.
    """

    def command(self) -> str:
        return (
            f"echo '{_MARK}query'; "
            "if command -v nvidia-smi >/dev/null 2>&1; then "
            f"nvidia-smi --query-gpu={QUERY_FIELDS} --format=csv,noheader,nounits 2>&1; "
            f'echo "{_MARK}query-exit $?"; '
            f"echo '{_MARK}banner'; nvidia-smi 2>/dev/null | grep 'CUDA Version'; "
            "fi; "
            f"echo '{_MARK}runtimes'; docker info --format '{{{{json .Runtimes}}}}' 2>/dev/null; "
            f"echo '{_MARK}toolkit'; nvidia-ctk --version 2>/dev/null; "
            f"echo '{_MARK}daemon-json'; "
            "grep -c nvidia-container-runtime /etc/docker/daemon.json 2>/dev/null; "
            f"echo '{_MARK}cdi'; ls -1d /etc/cdi/*nvidia* /var/run/cdi/*nvidia* 2>/dev/null; "
            f"echo '{_MARK}kernel'; uname -r; "
            f"echo '{_MARK}modules'; find /lib/modules -maxdepth 5 -name 'nvidia.ko*' 2>/dev/null; "
            f"echo '{_MARK}loaded'; head -n 1 /proc/driver/nvidia/version 2>/dev/null; "
            "true"
        )

    @staticmethod
    def default() -> dict[str, Any]:
        return {
            "gpus": [],
            "cuda_version": None,
            "docker_nvidia_runtime": False,
            "toolkit_version": None,
            "driver_error": None,
            "daemon_json_nvidia": False,
            "cdi_specs": [],
            "kernel": None,
            "module_kernels": [],
            "module_loaded": False,
        }

    def process(self, output: list[str]) -> dict[str, Any]:
        sections = split_sections(output, _MARK)
        exit_lines = [name for name in sections if name.startswith("query-exit ")]
        exit_status = exit_lines[0].split(" ", 1)[1] if exit_lines else None
        gpus, error = ([], None) if exit_status is None else _parse_gpus(sections["query"], exit_status)
        return {
            "gpus": gpus,
            "cuda_version": _parse_cuda(sections.get("banner", [])) if gpus else None,
            "docker_nvidia_runtime": _parse_runtime(sections.get("runtimes", [])),
            "toolkit_version": _parse_toolkit(sections.get("toolkit", [])),
            "driver_error": error,
            "daemon_json_nvidia": _counted(sections.get("daemon-json", [])),
            "cdi_specs": sorted({line.strip() for line in sections.get("cdi", []) if line.strip()}),
            "kernel": next((line.strip() for line in sections.get("kernel", []) if line.strip()), None),
            "module_kernels": sorted(
                {kernel for line in sections.get("modules", []) if (kernel := _kernel_of(line))}
            ),
            "module_loaded": any(line.strip() for line in sections.get("loaded", [])),
        }
