"""Lab test deploy: take the Ollama compose project down (present=False) through the operation."""

from deploys.library.catalog import project_dir, render_compose
from deploys.library.context import current
from deploys.library.service_steps import placement
from deploys.library.settings import Service
from operations import compose

ctx = current()
compose.service(
    name="ollama: compose project absent",
    project="ollama",
    compose=render_compose(ctx.settings, Service.OLLAMA, placement(ctx, Service.OLLAMA)),
    directory=str(project_dir(Service.OLLAMA)),
    present=False,
)
