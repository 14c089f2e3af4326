"""pyinfra's configuration file, loaded from the working folder before the inventory.

It holds no settings (those are in `.env`, the inventory and `--data`: README, Configuration); it makes
`--limit` strict: a name that matches no host or group is an error, and `--limit a,b` takes both
(deploys/library/limits.py).
"""

from deploys.library.limits import strict_limits

strict_limits()
