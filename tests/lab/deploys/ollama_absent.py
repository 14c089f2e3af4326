"""Lab test deploy: take the Ollama compose project down (present=False) through the operation."""

from deploys.catalog import project_dir, render_compose
from deploys.context import current
from deploys.settings import Service
from deploys.svc import placement
from operations import compose

ctx = current()
compose.service(
    name="ollama: compose project absent",
    project="ollama",
    compose=render_compose(ctx.settings, Service.OLLAMA, placement(ctx, Service.OLLAMA)),
    directory=str(project_dir(Service.OLLAMA)),
    present=False,
)
