"""The errors the library raises, as types (callers tell them apart by class, never by message).

A :class:`DeployError` is a policy problem found while planning a host (nothing has changed yet):
pyinfra prints its one line and the host fails. Settings problems are
``deploys.library.settings.SettingsError`` (a list of lines, one per problem); an API that does not
answer is ``operations.clients.ServiceUnreachable``.
"""

from __future__ import annotations

from pyinfra.api.exceptions import PyinfraError


class DeployError(PyinfraError):
    """A policy problem found while planning a host's deploy (nothing has changed yet)."""


class PlanError(DeployError):
    """The host plan cannot be made (an address it needs is unknown, a host's settings are invalid)."""
