"""Per-run state, in one place: what the library keeps for the length of one pyinfra run.

pyinfra loads every deploy file once per host (in parallel greenlets) and caches no fact, so what is
worked out once per run lives here, on the run's own ``State`` (a new run, or a test building several,
starts afresh):

- ``inventory_plan``: placement across the inventory (``context.inventory_plan``);
- ``contexts``: each host's context and plan (``context.current``);
- ``preflight``: tier 1's progress (how many hosts are done, which failed; ``deploys/validate.py``);
- ``tunnels``: the SSH tunnels to the hosts' APIs (``tunnel.local_url``), closed when the run's
  process exits;
- ``model_sizes``: the download size of each Ollama model, from its registry (``model_steps``).
"""

from __future__ import annotations

import atexit
from dataclasses import dataclass, field
from typing import Any

from pyinfra.context import ctx_state

_KEY = "homelab_run"


@dataclass
class RunState:
    inventory_plan: Any = None  # plan.InventoryPlan
    contexts: dict[str, Any] = field(default_factory=dict)  # host name -> context.HostContext
    preflight: dict[str, Any] = field(default_factory=dict)  # expected, done, failed
    tunnels: dict[tuple[str, str, int], Any] = field(default_factory=dict)  # sshtunnel forwarders
    model_sizes: dict[str, int | None] = field(default_factory=dict)  # model name -> bytes (None: unknown)

    def close_tunnels(self) -> None:
        while self.tunnels:
            _, tunnel = self.tunnels.popitem()
            try:
                tunnel.stop(force=True)
            except Exception:  # noqa: S110 - closing at exit: nothing left to report to
                pass


def current_run() -> RunState:
    """This run's state (``pyinfra.state`` is a proxy: the State itself comes from its context)."""
    state = ctx_state.get()
    run = state.__dict__.get(_KEY)
    if run is None:
        run = state.__dict__[_KEY] = RunState()
        atexit.register(run.close_tunnels)
    return run
