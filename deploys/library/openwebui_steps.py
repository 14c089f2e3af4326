"""Open WebUI's admin account, made by the deploy: nobody else can become the first admin."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from deploys.library import tunnel
from deploys.library.catalog import CATALOG, Service
from deploys.library.context import HostContext
from operations import openwebui
from operations.clients.openwebui import OpenWebUIClient

# the account script's input, for the moment it runs (0600, removed right after)
PAYLOAD = ".admin-account.json"


# how long the run waits for Open WebUI to answer (its first start runs database migrations; the
# catalog's health check allows 120 s); while planning: tunnel.PLANNING_WAIT
OPEN_WEBUI_READY_TIMEOUT = 180


def _factory(ctx: HostContext):
    """Open WebUI's client, through the tunnel to its container, asked once whether Open WebUI answers
    when it is made (a bounded wait when the run applies, a short one while planning)."""
    item = CATALOG[Service.OPEN_WEBUI]
    settings = ctx.settings
    client: dict[str, OpenWebUIClient] = {}

    def make() -> OpenWebUIClient:
        # one client while planning, another when the run applies: this run may have made the container
        # again, and with it its address on the Docker network
        phase = "run" if host.state.is_executing else "plan"
        if phase not in client:
            url = tunnel.container_url(host, item.name, "Open WebUI", item.upstream_port)
            email, password = settings.open_webui_admin_email or "", settings.open_webui_admin_password or ""
            made = OpenWebUIClient(url, email, password)
            made.wait_ready(timeout=tunnel.ready_wait(OPEN_WEBUI_READY_TIMEOUT))
            client[phase] = made
        return client[phase]

    return tunnel.answering_once(make, "Open WebUI")


@deploy("Open WebUI admin")
def admin(ctx: HostContext):
    settings = ctx.settings
    item = CATALOG[Service.OPEN_WEBUI]
    assert settings.open_webui_admin_email and settings.open_webui_admin_password  # required (catalog)
    openwebui.admin(
        name=f"Open WebUI admin {settings.open_webui_admin_email}; sign-up closed",
        client_factory=_factory(ctx),
        container=item.name,
        email=settings.open_webui_admin_email,
        display_name=settings.open_webui_admin_name,
        password=settings.open_webui_admin_password,
        payload_path=f"{item.project_dir}/{PAYLOAD}",
    )
