"""The whole stack end to end: `deploys/server.py` on every lab host at once, over real SSH.

One module-wide deploy (first `--dry`, then the real run, then the re-run) and then one property
per test, read from the hosts themselves.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import subprocess

import pytest
from labkit import PYINFRA, ROOT, assert_clean, npm_api, run_pyinfra_cli, ssh, webui_auth

from facts.firewalld import ONE_PROCESS
from lab.data import LAB_DATA  # noqa: E402

SERVER = "deploys/server.py"
CONTAINERS = ["nginx-proxy-manager", "pihole", "ollama", "comfyui", "open-webui"]
SECRETS = [LAB_DATA["pihole_password"], LAB_DATA["npm_admin_password"], LAB_DATA["open_webui_secret_key"],
           LAB_DATA["open_webui_admin_password"]]
DOMAIN = LAB_DATA["domain"]
SUBDOMAINS = {
    "chat": ("open-webui", 8080),
    "ollama": ("ollama", 11434),
    "comfy": ("comfyui", 8188),
    "hole": ("pihole", 80),
}


def _wipe(host):
    """Back to a bare lab host: containers, projects, network, zone and data of earlier runs gone."""
    ssh(
        host,
        'for d in /opt/homelab/*/; do [ -f "$d/compose.yaml" ] && docker compose '
        '--project-directory "$d" down --remove-orphans; done; rm -rf /opt/homelab /cold-storage/*; '
        "docker network rm self-hosted; "
        "if systemctl is-active -q firewalld; then firewall-cmd --permanent --delete-zone=self-hosted; "
        "firewall-cmd --reload; fi; true",
        check=False,
    )


@pytest.fixture(scope="module")
def deployed(lab_hosts):
    for host in lab_hosts:
        _wipe(host)
    dry = run_pyinfra_cli(SERVER, "--dry")
    after_dry = [
        ssh(host, "docker ps -q; ls /opt/homelab 2>/dev/null", check=False).stdout for host in lab_hosts
    ]
    first = run_pyinfra_cli(SERVER, timeout=1500)
    second = run_pyinfra_cli(SERVER)
    return {"dry": dry, "after_dry": after_dry, "first": first, "second": second}


def test_dry_run_plans_changes_and_changes_nothing(deployed, lab_hosts):
    planned = deployed["dry"].planned_changes()
    assert deployed["dry"].results is None
    assert any("compose project" in name for name in planned), planned
    assert all(output.strip() == "" for output in deployed["after_dry"]), deployed["after_dry"]


def test_first_deploy_succeeds_on_every_host_in_parallel(deployed, lab_hosts):
    first = deployed["first"]
    assert first.errors == 0
    changed = first.changed_operations()
    names = {f"{h['name']}" for h in lab_hosts}
    for container in CONTAINERS:
        assert set(changed[f"Compose services | {container}: compose project"]) == names


def test_second_run_changes_nothing(deployed):
    second = deployed["second"]
    assert second.changed == 0, second.changed_operations()
    assert second.errors == 0


def test_a_no_op_re_run_reads_each_host_in_one_remote_command(deployed, lab_hosts):
    """The run after one that listed its reads (facts/reads.py) reads each host in one remote command,
    uploads nothing and changes nothing: pyinfra's own accounting (`--debug`)."""
    run_pyinfra_cli(SERVER)  # lists this test's reads (its own folder, tests/conftest.py)
    proc = subprocess.run([str(PYINFRA), "-y", "--debug", "inventories/lab.py", SERVER], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    for host in lab_hosts:
        commands = re.findall(rf"Running command on {re.escape(host['name'])}: (.*)", output)
        assert len(commands) == 1, [command[:200] for command in commands]
        assert "mktemp -d" in commands[0]
    assert "Attempting upload" not in output
    assert re.search(r"Grand total\s+\d+\s+-\s", output), output[-2000:]


def test_firewalld_read_in_one_process_is_what_firewall_cmd_prints(deployed, lab_hosts):
    """FirewalldZones asks firewalld once, with firewall-cmd's own printing code: the same bytes as the
    three firewall-cmd calls it replaces, on a host with the deploy's zone."""
    three = ssh(lab_hosts[0], "firewall-cmd --get-default-zone && firewall-cmd --list-all-zones && echo "
                              "'firewalld: permanent' && firewall-cmd --permanent --list-all-zones").stdout
    one = ssh(lab_hosts[0], "python3 -c " + shlex.quote(ONE_PROCESS)).stdout
    assert "self-hosted" in three and "firewalld: permanent" in three
    assert one == three


def test_every_service_image_was_pulled_from_the_lab_registry(deployed, lab_hosts):
    """No image was preloaded: each service container's image carries the digest of the lab registry's
    repository that the lab's image setting names (a LAB-ONLY registry, lab/world.py)."""
    settings = {"nginx-proxy-manager": "image_nginx_proxy_manager", "pihole": "image_pihole",
                "ollama": "image_ollama", "comfyui": "image_comfyui", "open-webui": "image_open_webui"}
    for host in lab_hosts:
        for container in CONTAINERS:
            repository = LAB_DATA[settings[container]].rpartition(":")[0]
            assert repository.startswith("registry.world.lab.test/")
            image = ssh(host, f"docker inspect -f '{{{{.Image}}}}' {container}").stdout.strip()
            found = ssh(host, f"docker image inspect -f '{{{{json .RepoDigests}}}}' {image}").stdout
            digests = json.loads(found)
            assert any(d.startswith(f"{repository}@sha256:") for d in digests), (host["name"], found)


def test_runs_print_no_noise(deployed):
    """Nothing a person cannot act on: no warning for a missing ~/.ssh/config (none exists here)."""
    for run in ("first", "second"):
        output = deployed[run].stdout + deployed[run].stderr
        assert "Could not read SSH configuration file" not in output


@pytest.mark.parametrize("container", CONTAINERS)
def test_container_running_and_healthy(deployed, lab_hosts, container):
    for host in lab_hosts:
        state = ssh(
            host, f"docker inspect -f '{{{{.State.Status}}}} {{{{.State.Health.Status}}}}' {container}"
        )
        assert state.stdout.split() == ["running", "healthy"]


def test_ports_bound_only_to_the_tailscale_ip(deployed, lab_hosts):
    for host in lab_hosts:
        lines = [line for line in ssh(host, "ss -Hltnup").stdout.splitlines() if line.strip()]
        sockets = [line.split()[4] for line in lines if '"sshd"' not in line]
        # sshd (on 2222 here) and loopback-only listeners (the inner engine's own) are not ours
        ours = [s for s in sockets if not s.startswith(("127.", "[::1]"))]
        expected = [f"{host['tailscale_ip']}:{port}" for port in (53, 53, 80, 81, 443)]
        assert sorted(ours) == sorted(expected), sockets


def test_env_files_are_private_and_secrets_only_there(deployed, lab_hosts):
    for host in lab_hosts:
        modes = ssh(host, "stat -c '%a %n' /opt/homelab/*/.env").stdout.split("\n")
        assert all(line.startswith("600 ") for line in modes if line), modes
        composed = ssh(host, "cat /opt/homelab/*/compose.yaml").stdout
        assert not any(secret in composed for secret in SECRETS)
        assert "0.0.0.0" not in composed


def test_secrets_never_in_verbose_output(deployed):
    proc = subprocess.run(
        [str(ROOT / ".venv/bin/pyinfra"), "-y", "-vvv", "inventories/lab.py", SERVER],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    for secret in SECRETS:
        assert secret not in output


def test_pihole_and_npm_passwords_rotate_through_the_settings(deployed, lab_hosts):
    """New passwords from the settings (NPM's with the one it has now given once as the previous one)
    are applied; the re-run changes nothing; no password shows even at -vvv."""
    host = lab_hosts[0]
    name = host["name"]
    old = LAB_DATA["npm_admin_password"]
    new_pihole, new_npm = "lab-only-rotated-pihole-pw", "lab-only-rotated-npm-pw"
    rotate = ["--data", f"pihole_password={new_pihole}", "--data", f"npm_admin_password={new_npm}",
              "--data", f"npm_admin_previous_password={old}"]
    try:
        proc = subprocess.run(
            [str(ROOT / ".venv/bin/pyinfra"), "-y", "-vvv", "--limit", name, "inventories/lab.py", SERVER,
             *rotate],
            cwd=ROOT, capture_output=True, text=True, timeout=900,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output[-4000:]
        admin_changed = r"Proxy hosts \| NGINX Proxy Manager admin account\s+1\s+1\s"
        assert re.search(admin_changed, output), output[-3000:]
        for secret in (new_pihole, new_npm, old, LAB_DATA["pihole_password"]):
            assert secret not in output
        again = run_pyinfra_cli(SERVER, *rotate, limit=name)
        assert again.changed == 0, again.changed_operations()
        # the old NPM password no longer logs in: the deploy says how to rotate
        stale = run_pyinfra_cli(SERVER, limit=name, check=False)
        assert stale.returncode != 0
        said = stale.stdout + stale.stderr
        assert "give the one NPM has now once as HOMELAB_NPM_ADMIN_PREVIOUS_PASSWORD" in said, stale.explain()
        assert_clean(stale)
    finally:
        back = run_pyinfra_cli(SERVER, "--data", f"npm_admin_previous_password={new_npm}", limit=name,
                               check=False)
        assert back.returncode == 0, back.explain()
    assert run_pyinfra_cli(SERVER, limit=name).changed == 0


# Run on the lab host as root while a deploy uploads secrets: every file written under the watched
# folders that holds one of the secrets (listed in a root-only file) is reported with its mode and
# owner and those of its folder, the moment it is closed after writing.
WATCH = r"""
inotifywait -m -r -q -e close_write -e moved_to --format '%w%f' /tmp /var/tmp /opt/homelab |
while read -r f; do
    d=$(dirname "$f")
    s=$(stat -c '%a %U' "$f" 2>/dev/null) && t=$(stat -c '%a %U' "$d" 2>/dev/null) &&
    grep -qF -f /root/lab-secrets "$f" 2>/dev/null && echo "$s $t $f"
done
"""


def test_secrets_are_never_readable_by_another_user_while_uploaded(deployed, lab_hosts):
    """A sudo login cannot write a root file over SFTP: pyinfra stages the upload as the login user.
    Whatever path an upload takes, a file holding a secret is readable by its owner only, or sits in
    a folder only its owner can enter."""
    host = lab_hosts[0]
    name = f"{host['name']}"
    rotated = "lab-only-rotated-pihole-password"
    ssh(host, f"umask 077 && printf '%s\\n' {rotated} > /root/lab-secrets")
    watch = shlex.quote(WATCH)
    ssh(host, f"rm -f /root/lab-watch.log; (setsid sh -c {watch} > /root/lab-watch.log 2>&1 &) ; sleep 1")
    try:
        run_pyinfra_cli(SERVER, "--data", f"pihole_password={rotated}", limit=name)
    finally:
        ssh(host, "pkill -f 'inotifywait -m -r -q' ; sleep 0.5", check=False)
        seen = ssh(host, "cat /root/lab-watch.log").stdout.splitlines()
        ssh(host, "rm -f /root/lab-secrets /root/lab-watch.log", check=False)
        run_pyinfra_cli(SERVER, limit=name)  # the lab's own password again
    files = {line.split()[-1]: line.split()[:4] for line in seen}
    # the watcher saw the secret land in its place (so it also saw whatever came before)
    assert files.get("/opt/homelab/pihole/.env", [None])[0] == "600", seen
    for path, (mode, owner, folder_mode, folder_owner) in files.items():
        private = int(mode, 8) & 0o077 == 0
        in_private_folder = int(folder_mode, 8) & 0o077 == 0 and folder_owner in (owner, "root")
        assert private or in_private_folder, (
            f"{path} ({mode} {owner}) holds a secret in a {folder_mode} folder of {folder_owner}"
        )


def test_firewall_zone_has_exactly_the_intended_sources_and_ports(deployed, lab_hosts):
    for host in lab_hosts:
        info = ssh(host, "firewall-cmd --info-zone=self-hosted").stdout
        fields = dict(line.strip().split(":", 1) for line in info.splitlines()[1:] if ":" in line)
        subnet = json.loads(ssh(host, "docker network inspect self-hosted -f '{{json .IPAM.Config}}'").stdout)
        # the Docker subnet stays in Docker's own zone (see test_every_container_reaches_another_machine)
        assert fields["sources"].split() == ["100.64.0.0/10"], subnet
        # the published ports, and sshd's own port (2222 in the lab) for the tailnet
        assert fields["ports"].split() == ["80/tcp", "443/tcp", "81/tcp", "53/tcp", "53/udp", "2222/tcp"]
        assert fields["services"].split() == ["ssh"]
        assert fields["forward"].strip() == "no"


def _world() -> dict:
    """The lab's stand-in for the internet (lab/world.py), as `python -m lab up` recorded it."""
    return json.loads((ROOT / ".lab" / "hosts.json").read_text())["world"]


def _lab_address(host) -> str:
    """The host's address on the lab network (eth0), not its Tailscale address."""
    line = ssh(host, "ip -4 -o addr show dev eth0").stdout.split()
    return line[line.index("inet") + 1].split("/")[0]


@pytest.mark.parametrize("container", CONTAINERS)
def test_every_container_reaches_another_machine(deployed, lab_hosts, container):
    """With the zone applied, each service container opens a connection to a machine outside its
    host (the world stand-in, over the lab network): upstream DNS, model pulls and certificates need it."""
    world = _world()
    for host in lab_hosts:
        answer = ssh(host, f"docker exec {container} curl -sS --max-time 5 http://{world['address']}/",
                     check=False)
        assert (answer.returncode, answer.stdout) == (0, "lab world"), (host["name"], answer.stderr)


def test_pihole_resolves_a_name_only_its_upstream_knows(deployed, lab_hosts):
    world = _world()
    for host in lab_hosts:
        answer = ssh(host, f"docker exec pihole dig +short +time=3 +tries=1 @{host['tailscale_ip']} "
                           "listener.world.lab.test")
        assert answer.stdout.split() == [world["address"]]


PROBE = """
import socket, sys
for port in map(int, sys.argv[2:]):
    try:
        socket.create_connection((sys.argv[1], port), timeout=2).close()
        print(port, "open")
    except OSError as error:
        print(port, type(error).__name__)
"""


def test_published_ports_answer_tailnet_peers_only(deployed, lab_hosts):
    """A tailnet peer reaches every published port; the same peer routing to the Tailscale address
    over the lab network (as a LAN machine with a static route would) reaches none of them."""
    if len(lab_hosts) < 2:
        pytest.skip("needs two lab hosts")
    target, peer = lab_hosts[0], lab_hosts[1]
    address, ports = target["tailscale_ip"], ["80", "81", "443", "53"]
    probe = f"python3 -c '{PROBE}' {address} {' '.join(ports)}"
    dns = f"docker exec pihole dig +short +time=2 +tries=1 @{address} chat.{DOMAIN}"
    over_tailnet = ssh(peer, probe).stdout.split("\n")
    assert over_tailnet[:-1] == [f"{port} open" for port in ports]
    assert ssh(peer, dns).stdout.split() == [address]
    ssh(peer, f"ip route replace {address}/32 via {_lab_address(target)} dev eth0")
    try:
        over_lan = ssh(peer, probe).stdout.split("\n")
        assert over_lan[:-1] == [f"{port} TimeoutError" for port in ports]
        refused = ssh(peer, dns, check=False)
        assert refused.returncode != 0 and "timed out" in refused.stdout, refused.stdout
    finally:
        # back to the lab's tailnet route (lab/images/host/lab-tailscale0-standin), not no route at all:
        # the rest of 100.64.0.0/10 is unreachable, so a deleted route cuts the peers apart
        ssh(peer, f"ip route replace {address}/32 dev tailscale0 scope link src {peer['tailscale_ip']}")
    dropped = ssh(target, "nft list chain inet homelab_published_ports tailnet_only").stdout
    assert "counter packets 0 " not in dropped, dropped


def test_network_holds_the_containers_and_they_resolve_each_other(deployed, lab_hosts):
    for host in lab_hosts:
        subnet = json.loads(ssh(host, "docker network inspect self-hosted -f '{{json .IPAM.Config}}'").stdout)
        ipaddress.ip_network(subnet[0]["Subnet"])
        attached = ssh(host, "docker network inspect self-hosted -f '{{range .Containers}}{{.Name}} {{end}}'")
        assert sorted(attached.stdout.split()) == sorted(CONTAINERS)
        answer = ssh(host, "docker exec open-webui curl -fsS http://ollama:11434/api/tags").stdout
        assert json.loads(answer) == {"models": []}


def _proxy_hosts(host):
    return json.loads(npm_api(host, "list"))


def test_proxy_hosts_forward_each_subdomain(deployed, lab_hosts):
    for host in lab_hosts:
        hosts = _proxy_hosts(host)
        found = {h["domain_names"][0]: (h["forward_host"], h["forward_port"]) for h in hosts}
        assert found == {f"{sub}.{DOMAIN}": target for sub, target in SUBDOMAINS.items()}
        assert all(h["allow_websocket_upgrade"] and h["block_exploits"] for h in hosts)


def test_pihole_resolves_each_subdomain_to_the_proxy(deployed, lab_hosts):
    for host in lab_hosts:
        for sub in SUBDOMAINS:
            answer = ssh(host, f"docker exec pihole dig +short @{host['tailscale_ip']} {sub}.{DOMAIN}")
            assert answer.stdout.split() == [host["tailscale_ip"]]


def test_drift_in_the_proxy_is_previewed_then_repaired(deployed, lab_hosts):
    host = lab_hosts[0]
    name = f"{host['name']}"
    npm_api(host, "set-forward-port", f"chat.{DOMAIN}", "3000")  # someone edits it in the UI
    dry = run_pyinfra_cli(SERVER, "--dry", limit=name)
    assert dry.planned_changes() == {f"Proxy hosts | chat.{DOMAIN} -> open-webui:8080": [name]}
    repaired = run_pyinfra_cli(SERVER, limit=name)
    assert repaired.changed_operations() == {f"Proxy hosts | chat.{DOMAIN} -> open-webui:8080": [name]}
    assert run_pyinfra_cli(SERVER, limit=name).changed == 0


def test_data_survives_taking_a_service_down_and_redeploying(deployed, lab_hosts):
    host = lab_hosts[-1]
    name = f"{host['name']}"
    ssh(host, "echo precious > /cold-storage/ai/ollama/models/keep.txt")
    # left out of HOMELAB_SERVICES, Ollama is no longer placed on the host: its containers go, its data stays
    without = "services=nginx-proxy-manager,pihole,comfyui,open-webui"
    down = run_pyinfra_cli("deploys/ollama.py", "--data", without, limit=name)
    assert down.changed_operations() == {
        "Compose services | ollama: not placed on this host: containers down (data kept)": [name],
    }
    assert run_pyinfra_cli("deploys/ollama.py", "--data", without, limit=name).changed == 0
    assert ssh(host, "docker ps -aq --filter name=^ollama$").stdout.strip() == ""
    assert ssh(host, "cat /cold-storage/ai/ollama/models/keep.txt").stdout == "precious\n"
    again = run_pyinfra_cli("deploys/ollama.py", limit=name)
    # the project comes back, and the deploy waits for it to be healthy
    assert again.changed_operations() == {
        "Compose services | ollama: compose project": [name],
        "Compose services | ollama: running and healthy": [name],
    }
    assert ssh(host, "cat /cold-storage/ai/ollama/models/keep.txt").stdout == "precious\n"
    assert run_pyinfra_cli(SERVER, limit=name).changed == 0


def test_ai_tag_touches_only_the_ai_services(deployed, lab_hosts):
    host = lab_hosts[0]
    name = f"{host['name']}"
    ssh(host, "docker stop comfyui nginx-proxy-manager")
    try:
        result = run_pyinfra_cli("deploys/ai.py", limit=name)
        assert result.changed_operations() == {
            "Compose services | comfyui: compose project": [name],
            "Compose services | ollama, comfyui, open-webui: running and healthy": [name],
        }
        assert not any("nginx" in op["name"] or "pihole" in op["name"] for op in result.results["operations"])
        assert (
            ssh(host, "docker inspect -f '{{.State.Status}}' nginx-proxy-manager").stdout.strip() == "exited"
        )
    finally:
        run_pyinfra_cli(SERVER, limit=name)
    assert run_pyinfra_cli(SERVER, limit=name).changed == 0


# -- Open WebUI's admin --------------------------------------------------------------------------
WEBUI_EMAIL, WEBUI_PASSWORD = LAB_DATA["open_webui_admin_email"], LAB_DATA["open_webui_admin_password"]


def _signin(host, password: str = WEBUI_PASSWORD) -> tuple[int, dict]:
    return webui_auth(host, "signin", {"email": WEBUI_EMAIL, "password": password})


def _stranger_signup(host) -> int:
    return webui_auth(host, "signup", {"name": "Stranger", "email": "stranger@lab.home.arpa",
                                   "password": "lab-only-stranger"})[0]


def test_open_webui_admin_exists_and_a_stranger_cannot_sign_up(deployed, lab_hosts):
    for host in lab_hosts:
        status, session = _signin(host)
        found = (status, session.get("role"), session.get("email"))
        assert found == (200, "admin", WEBUI_EMAIL), host["name"]
        assert _stranger_signup(host) == 403, host["name"]


def test_open_webui_signup_is_closed_before_the_admin_exists_and_the_deploy_makes_it(deployed, lab_hosts):
    """A first start with no account at all (its database gone): nobody can sign up, not even as the
    first account, before the deploy makes the admin; the deploy makes it; a re-run changes nothing."""
    host = lab_hosts[0]
    name = host["name"]
    ssh(host, "docker stop -t 3 open-webui >/dev/null; rm -f /cold-storage/ai/open-webui/data/webui.db; "
              "docker start open-webui >/dev/null; for i in $(seq 1 60); do docker exec open-webui "
              "curl -fsS http://localhost:8080/health >/dev/null 2>&1 && break; sleep 1; done")
    assert _stranger_signup(host) == 403
    assert _signin(host)[0] == 400
    made = run_pyinfra_cli("deploys/openwebui.py", limit=name)
    changed = " ".join(made.changed_operations())
    assert f"Open WebUI admin | Open WebUI admin {WEBUI_EMAIL}" in changed, changed
    assert _signin(host)[1].get("role") == "admin"
    assert _stranger_signup(host) == 403
    again = run_pyinfra_cli("deploys/openwebui.py", limit=name)
    assert again.changed == 0, again.changed_operations()


def test_open_webui_admin_password_rotates_through_the_settings(deployed, lab_hosts):
    host = lab_hosts[0]
    name = host["name"]
    new = "lab-only-rotated-webui-pw"
    try:
        rotate = ("--data", f"open_webui_admin_password={new}")
        rotated = run_pyinfra_cli("deploys/openwebui.py", *rotate, limit=name)
        assert rotated.changed >= 1
        assert _signin(host, new)[0] == 200
        assert _signin(host)[0] == 400
        assert_clean(rotated)
        again = run_pyinfra_cli("deploys/openwebui.py", *rotate, limit=name)
        assert again.changed == 0, again.changed_operations()
    finally:
        back = run_pyinfra_cli("deploys/openwebui.py", limit=name, check=False)
        assert back.returncode == 0, back.explain()
    assert _signin(host)[0] == 200
    assert run_pyinfra_cli(SERVER, limit=name).changed == 0

