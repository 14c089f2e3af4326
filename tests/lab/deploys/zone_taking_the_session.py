"""A firewalld zone that takes the deploy's own address as a source (``--data client=ADDRESS``) and
admits nothing, SSH included: the zone operation's guard must refuse it before any change, naming the
source and sshd's port. Test-only: the deploy's own zone admits sshd's port whatever the session is."""

from pyinfra import host

from operations import firewalld

client = host.data.get("client")
firewalld.zone(
    name="lab: a zone that would take the session",
    zone="lab-guard",
    sources=[f"{client}/32"],
    ports=[],
    services=[],
    protect_ssh_from=client,
    ssh_port=2222,
)
