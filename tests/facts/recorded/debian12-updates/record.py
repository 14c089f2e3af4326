"""Record facts.updates.AutomaticUpdates' real output on a Debian 12 host in a throwaway container.

    docker run -d --name upg-rec --cap-add ALL --cap-drop SYS_RESOURCE \
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
        --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
        homelab-lab/host:lab
    docker exec upg-rec sh -c 'apt-get update && apt-get install -y unattended-upgrades'
    .venv/bin/python tests/facts/recorded/debian12-updates/record.py upg-rec
    docker rm -f upg-rec

The lab image's Debian 12 (docker.io, containerd, runc installed; the package lists as of the recording,
with security updates pending). Steps: the package's own setup (no holds, no file of ours), then the
deploy's holds (operations.updates.hold_command) and its configuration file, then a pending reboot
(/var/run/reboot-required, as Debian's update-notifier-common hook writes it), then no package lists.
Writes
tests/facts/updates.AutomaticUpdates/recorded-debian12-*.json (read them before committing).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from deploys.library import security_steps  # noqa: E402
from facts.updates import AutomaticUpdates  # noqa: E402
from operations.updates import hold_command  # noqa: E402

ARG = {"manager": "apt", "files": [security_steps.APT_CONFIG], "timers": list(security_steps.APT_TIMERS)}


def sh(container: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True)


def write(container: str, name: str, source: str) -> None:
    fact = AutomaticUpdates()
    command = fact.command(**ARG)
    output = sh(container, command).stdout.splitlines()
    folder = ROOT / "tests" / "facts" / "updates.AutomaticUpdates"
    folder.mkdir(parents=True, exist_ok=True)
    case = {
        "_source": f"recorded: Debian 12 (lab image homelab-lab/host:lab, unattended-upgrades "
                   f"{version(container)}), {source}",
        "arg": ARG,
        "command": command,
        "output": output,
        "fact": fact.process(output),
    }
    (folder / f"recorded-debian12-{name}.json").write_text(json.dumps(case, indent=2) + "\n")


def version(container: str) -> str:
    return sh(container, "dpkg-query -W -f='${Version}' unattended-upgrades").stdout.strip()


def main(container: str) -> None:
    sh(container, f"apt-mark unhold docker.io containerd runc; rm -f {security_steps.APT_CONFIG} "
                  "/var/run/reboot-required")
    write(container, "package-defaults", "as the package installs itself: no holds, no file of ours, "
          "security updates pending")
    held = sh(container, hold_command(["containerd", "docker.io", "nvidia-container-toolkit", "runc"], "apt"))
    print("hold:", held.returncode, held.stdout, held.stderr)
    from deploys.library.settings import HomelabSettings

    settings = HomelabSettings.model_construct(reboot="never")
    content = security_steps.apt_config(settings, "debian")
    subprocess.run(["docker", "exec", "-i", container, "sh", "-c", f"cat > {security_steps.APT_CONFIG}"],
                   input=content, text=True, check=True)
    write(container, "deployed", "after the deploy's holds (docker.io containerd runc; "
          "nvidia-container-toolkit not installed, not held) and its configuration file")
    sh(container, "printf '*** System restart required ***\\n' > /var/run/reboot-required")
    write(container, "reboot-required", "deployed, with /var/run/reboot-required present")
    sh(container, "rm -f /var/run/reboot-required")
    sh(container, "mkdir -p /tmp/lists && mv /var/lib/apt/lists/* /tmp/lists/")
    write(container, "no-package-lists", "deployed, with the package lists taken away (as the lab image "
          "ships: its Dockerfile removes /var/lib/apt/lists): pending security updates unknown")
    sh(container, "mv /tmp/lists/* /var/lib/apt/lists/")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "upg-rec")
