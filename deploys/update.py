"""Update the services' images: ask each image's registry whether its tag has moved since the deploy
pinned it, and move the pin where it has (README: Updating).

The new images are pulled first, all at once, before anything stops (a failed pull changes nothing
and names the image and why); where backups are configured, a backup is taken before the first
container is replaced; each updated service must become healthy, or it is rolled back to the image it
ran before and the run fails with one line naming the service, the new image and its health check.
Data under the cold-storage path is never touched. A changed image setting (HOMELAB_IMAGE_<NAME>)
needs no update: every deploy applies it the same way.

    pyinfra inventories/home.py deploys/update.py --dry                              # old -> new per service
    pyinfra inventories/home.py deploys/update.py                                    # every service
    pyinfra inventories/home.py deploys/update.py --data update_services=ollama,comfyui
"""

from pyinfra import host

from deploys.library import context, service_steps
from deploys.library.catalog import selectable_services, set_members

ctx = context.current()
refresh = service_steps.update_request(ctx, host.data)
service_steps.deploy_services(ctx, list(selectable_services()), refresh=refresh)
# the monitoring set where it is on (deploys/monitoring.py takes it down where it is off)
if ctx.settings.monitoring:
    service_steps.deploy_services(ctx, list(set_members("monitoring")), refresh=refresh)
