"""An operation run for real by pyinfra (``run_ops``) on one ``@local`` host, for the paths where it must
fail on that host with one line: never pyinfra's "Unexpected error" with a traceback."""

from __future__ import annotations

from typing import Any

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operation import add_op
from pyinfra.api.operations import run_ops


def fails_on_its_host(caplog: Any, op: Any, said: str, **kwargs: Any) -> list[str]:
    """Run ``op(**kwargs)`` on ``@local``: it must fail that host (one failed operation, no traceback,
    no unexpected error) and log ``said`` exactly once; returns the lines that hold it."""
    state = State(Inventory((["@local"], {})), Config())
    connect_all(state)
    add_op(state, op, **kwargs)
    with pytest.raises(PyinfraError, match="No hosts remaining"):  # the only host failed
        run_ops(state)
    assert state.get_results_for_host(state.inventory.get_host("@local")).error_ops == 1
    lines = [r.getMessage() for r in caplog.records if said in r.getMessage()]
    assert len(lines) == 1, caplog.text
    assert "Traceback" not in caplog.text and "Unexpected error" not in caplog.text
    return lines
