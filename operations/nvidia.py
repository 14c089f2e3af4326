"""NVIDIA container toolkit state that a package install alone does not create."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationValueError, QuoteString, StringCommand, operation
from pyinfra.facts.files import File

from facts.gpu import NvidiaGpus
from facts.reads import read_fact

# toolkit >= 1.18 ships nvidia-cdi-refresh, which keeps this spec current by itself
REFRESHED_SPEC = "/var/run/cdi/nvidia.yaml"
SELF_REFRESHING = (1, 18)


def _version(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.split(".")[:2])
    except ValueError:
        return None


@operation()
def cdi_spec(output: str = "/etc/cdi/nvidia.yaml"):
    """
    Generate the CDI specification of the host's GPUs once, where nothing else keeps one.

    + output: where ``nvidia-ctk cdi generate`` writes the specification

    No-op when a specification exists (``output`` or the one ``nvidia-cdi-refresh`` keeps in
    ``/var/run/cdi``), or when the toolkit is 1.18 or newer (it refreshes its own). Two specs
    naming the same devices would conflict, so this never writes a second one.

    **Example:**

    .. code:: python

        nvidia.cdi_spec(name="CDI specification for the GPUs")
    """
    if not output.startswith("/"):
        raise OperationValueError(f"output: {output!r} is not an absolute path")
    for path in (output, REFRESHED_SPEC):
        if read_fact(File, path=path, host=host):
            host.noop(f"a CDI specification exists: {path}")
            return
    toolkit = read_fact(NvidiaGpus, host=host).get("toolkit_version")
    version = _version(toolkit)
    if version is not None and version >= SELF_REFRESHING:
        host.noop(f"NVIDIA container toolkit {toolkit} keeps {REFRESHED_SPEC} current itself")
        return
    yield StringCommand("nvidia-ctk", "cdi", "generate", QuoteString(f"--output={output}"))
