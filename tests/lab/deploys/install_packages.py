"""The project's package operation (operations/packages.py) installing the packages a test names
(``--data packages=jq,...``) with a refresh of the package lists first, as the deploy's install steps do:
used to make an install fail for real on a lab host. Test-only."""

from pyinfra import host

from operations import packages

packages.packages(
    name="lab: install the test's packages",
    packages=[name for name in host.data.get("packages", "").split(",") if name],
    manager="apt",
    update=True,
    cache_time=3600,
)
