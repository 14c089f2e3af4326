"""A GPU whose NVIDIA driver fails: what on the host shows it was set up for one, and why nvidia-smi
fails (read from facts.gpu.NvidiaGpus); the plan, the preflight and the deploy share these words."""

from __future__ import annotations

from typing import Any


def gpu_setup_evidence(gpu: dict[str, Any]) -> list[str]:
    """What on the host shows that it was set up for an NVIDIA GPU (facts.gpu.NvidiaGpus)."""
    found = []
    if gpu.get("docker_nvidia_runtime"):
        found.append("Docker has the nvidia runtime")
    elif gpu.get("daemon_json_nvidia"):
        found.append("/etc/docker/daemon.json has the nvidia runtime")
    if gpu.get("toolkit_version"):
        found.append(f"NVIDIA container toolkit {gpu['toolkit_version']}")
    found += [f"CDI spec {spec}" for spec in gpu.get("cdi_specs") or []]
    if gpu.get("module_kernels"):
        found.append(f"nvidia kernel module for {', '.join(gpu['module_kernels'])}")
    return found


def driver_diagnosis(gpu: dict[str, Any]) -> str:
    """Why nvidia-smi fails, as far as the fact can tell, and what to do about it."""
    kernel = gpu.get("kernel")
    running = f"the running kernel {kernel}" if kernel else "the running kernel"
    target = kernel or "$(uname -r)"
    built = gpu.get("module_kernels") or []
    if gpu.get("module_loaded"):
        return ("the nvidia kernel module is loaded but nvidia-smi cannot use it (driver and module "
                "versions differ after an update?): reboot, or reinstall the driver")
    if built and kernel in built:
        return (f"the nvidia kernel module is built for {running} but not loaded: run `modprobe nvidia` "
                "and read `dmesg` (Secure Boot rejects an unsigned module), or reboot")
    if built:
        return (f"the nvidia kernel module is built for {', '.join(built)} but not for {running}, the usual "
                "state after a kernel update that akmod/DKMS did not follow: rebuild it (`akmods --force "
                f"--kernels {target}` with RPM Fusion, `dkms autoinstall -k {target}` with DKMS) or boot a "
                "kernel it was built for, then `modprobe nvidia` or reboot")
    return (f"no nvidia kernel module found; usually the driver's module was not built for {running} "
            f"(akmod/DKMS after a kernel update): rebuild or reinstall it for {target} and reboot")


def broken_gpu(gpu: dict[str, Any]) -> str | None:
    """A sentence naming the nvidia-smi error, the evidence and the remedy, when nvidia-smi fails on
    a host that was set up for a GPU; ``None`` otherwise (a GPU that works, or none ever set up)."""
    error = gpu.get("driver_error")
    evidence = gpu_setup_evidence(gpu)
    if gpu.get("gpus") or not error or not evidence:
        return None
    setup = "; ".join(evidence)
    return f"nvidia-smi fails ({error}) on a host set up for a GPU ({setup}): {driver_diagnosis(gpu)}"


def working_gpu(gpu: dict[str, Any] | None) -> bool | None:
    """Whether the host has an NVIDIA GPU its driver can use (``None``: the host was not read)."""
    if gpu is None:
        return None
    return bool(gpu.get("gpus")) and broken_gpu(gpu) is None
