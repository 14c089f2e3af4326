"""Restore the service data from the backups (README: Backups, disaster recovery).

Sets up restic as deploys/backup.py does (without the timers: deploys/server.py adds them), then per
service: stops it (docker compose down, never -v), restores its data folders with owners and modes,
puts its SQLite databases back from their consistent copies, and starts it again. Refuses, before
anything changes, to restore over a data folder that is not empty, unless restore_overwrite=true (what
it held is then kept beside it as <folder>.before-restore-<time>).

    pyinfra inventories/home.py deploys/restore.py                                   # latest, every service
    pyinfra inventories/home.py deploys/restore.py --data restore_services=open-webui
    pyinfra inventories/home.py deploys/restore.py --data restore_snapshot=4b3ed775
    pyinfra inventories/home.py deploys/restore.py --data restore_overwrite=true
"""

from pyinfra import host

from deploys.library import backup_steps, context

ctx = context.current()
backup_steps.setup(ctx, timers=False)
services, snapshot, overwrite = backup_steps.restore_request(ctx, host.data)
backup_steps.restore(ctx, services, snapshot, overwrite)
