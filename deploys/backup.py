"""Tag `backup`: restic backups of the service data (README: Backups).

Installs restic, writes its configuration (the password only in a 0600 file), makes the repository
once, and installs the backup script, its daily timer (HOMELAB_BACKUP_SCHEDULE) and a weekly
`restic check`. What is backed up comes from the catalog's backup classes (HOMELAB_BACKUP_CLASSES).

    pyinfra inventories/home.py deploys/backup.py
    pyinfra inventories/home.py deploys/backup.py --data backup_now=true    # and take a backup at once
"""

from pyinfra import host

from deploys.library import backup_steps, context

ctx = context.current()
backup_steps.setup(ctx)
if str(host.data.get("backup_now", "")).lower() in ("true", "1", "yes"):
    backup_steps.backup_now(ctx)
