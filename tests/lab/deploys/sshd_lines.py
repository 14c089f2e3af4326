"""The sshd guard with lines a test chooses (``--data sshd_lines=...``, separated by ``|``), in its own
drop-in: used to prove that a configuration sshd refuses, or one that locks the deploy's login out, is
put back while the deploy's session survives. Test-only: the deploy never takes sshd lines as input."""

from pyinfra import host

from operations import sshd

sshd.drop_in(
    name="lab: sshd drop-in with the test's lines",
    file="05-lab-test.conf",
    lines=[line for line in host.data.get("sshd_lines", "").split("|") if line],
    revert_after=int(host.data.get("sshd_revert_after", 120)),
)
