"""Expected failures of an operation, reported the way pyinfra reports a failed command.

A refusal found while planning (a conflict, a password the service refuses) or while applying (an
API that says no) is one red line on the host it concerns; the operation fails there, the other
hosts carry on, and the run exits non-zero. Raising ``OperationError`` while planning instead
prints a traceback and stops every host: that stays for bugs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pyinfra import host, logger
from pyinfra.api import FunctionCommand


def named(function: Callable[..., Any], description: str) -> Callable[..., Any]:
    """Give a deferred call a readable name: pyinfra shows FunctionCommands by function name."""
    function.__name__ = description
    return function


def report(target: Any, message: str) -> bool:
    """One red line on ``target``'s output; ``False`` fails the operation there."""
    target.log_styled(message, fg="red", log_func=logger.error)
    return False


def failure(message: str) -> FunctionCommand:
    """A command that fails the operation with ``message`` when it runs."""
    return FunctionCommand(named(lambda state, host: report(host, message), message), (), {})


def refuse(message: str) -> Iterator[FunctionCommand]:
    """Refuse the operation on this host: said while planning (so ``--dry`` shows it), failed when run."""
    if not host.state.is_executing:
        logger.error(f"{host.print_prefix}{message}")
    yield failure(message)
