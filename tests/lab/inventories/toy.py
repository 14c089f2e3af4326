"""The lab inventory with a toy sixth service in the catalog (tests/toy_service.py): LAB ONLY.

    pyinfra tests/lab/inventories/toy.py deploys/server.py --limit homelab-lab-1
    pytest tests/verify --inventory tests/lab/inventories/toy.py --limit homelab-lab-1
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.toy_service import register  # noqa: E402

register()  # before any settings are read: HOMELAB_SERVICES' default is every catalog service

from inventories.lab import lab_hosts  # noqa: E402, F401  (the lab hosts, as one group)
