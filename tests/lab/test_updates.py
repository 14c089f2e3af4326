"""Updates end to end on the last lab host, with real pulls from the lab registry (Debian's
docker-registry in the world stand-in, lab/registry.py), on Ollama's stand-in: the registry holds its
default tag, a healthy `lab-v2` and a `lab-v3-unhealthy` whose health check fails.

Proven, with the checksums of Ollama's data folder unchanged throughout:
- v1 -> v2: `--dry` names old -> new with both digests and changes nothing; the run pulls first, moves
  the pin (the one before kept), recreates the container healthy on the exact v2 digest; a second run
  changes nothing;
- v2 -> v3: the new image is not healthy, so it is rolled back to v2 by digest, healthy again, and the
  run fails with the one line that says so; a re-run with v2 changes nothing;
- a tag that does not exist fails the pull before anything stops (the container is not restarted);
- a tag that moves in the registry changes nothing on a plain run, `deploys/outdated.py` names it,
  `deploys/update.py --data update_services=ollama` moves the pin;
- removing Ollama from HOMELAB_SERVICES takes its container, its proxy host and its DNS record away and
  keeps its data; adding it back brings all three back on the same data.
"""

from __future__ import annotations

import re

import pytest
from labkit import assert_clean, npm_api, run_pyinfra_cli, ssh

from lab import images, registry, state  # noqa: E402
from lab.data import LAB_DATA, LAB_IMAGES, LAB_REGISTRY, OLLAMA_LAB_V2, OLLAMA_LAB_V3_UNHEALTHY  # noqa: E402

SERVER = "deploys/server.py"
OLLAMA = "deploys/ollama.py"
V1 = LAB_IMAGES["ollama"]
# a tag this module moves in the lab registry (pushed here, first as v1's image, then as v2's)
MOVING = f"{LAB_REGISTRY}/ollama/ollama:lab-moving"
DOMAIN = LAB_DATA["domain"]
DATA = f"{LAB_DATA['cold_storage_path']}/ai/ollama/models"
PIN = "/opt/homelab/ollama/compose.override.yaml"
PREVIOUS = "/opt/homelab/ollama/compose.override.previous.yaml"
CHECKSUMS = f"cd {DATA} && find . -type f -print0 | sort -z | xargs -0 -r sha256sum"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PULL_OP = "Compose services | New images pulled first, all at once, before anything stops"


def _output(result) -> str:
    return ANSI.sub("", result.stdout + result.stderr)


def _image(ref: str) -> list[str]:
    return ["--data", f"image_ollama={ref}"]


def _pin_of_text(text: str) -> dict[str, str]:
    """The `x-homelab-pin` mapping of a pin file (read as text: the test states the format itself)."""
    lines = text.splitlines()
    start = lines.index("x-homelab-pin:")
    found = {}
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        key, _, value = line.strip().partition(": ")
        found[key] = value.strip('"')
    return found


def _pin(host) -> dict[str, str]:
    return _pin_of_text(ssh(host, f"cat {PIN}").stdout)


def _short(digest_or_ref: str) -> str:
    return digest_or_ref.rpartition("@")[2][:19]


def _push(local: str, ref: str) -> None:
    world = state.load_world()
    registry.push({local: ref}, world["registry_port"], registry.ensure_certificates(state.REGISTRY_DIR))


def _running(host) -> tuple[str, str, str, str]:
    """(image as named, image ID, health, started at) of the Ollama container."""
    out = ssh(host, "docker inspect --format '{{.Config.Image}} {{.Image}} {{.State.Health.Status}} "
                    "{{.State.StartedAt}}' ollama").stdout.split()
    return out[0], out[1], out[2], out[3]


def _registry_digest(host, ref: str) -> str:
    """``repo@sha256:…`` of what the registry serves for ``ref`` now (the registry's own answer, through
    the host's engine; nothing pulled)."""
    request = f"GET /distribution/{ref}/json HTTP/1.0\\r\\n\\r\\n"
    answer = ssh(host, f"printf '{request}' | docker system dial-stdio")
    digest = re.search(r'"digest":"(sha256:[0-9a-f]{64})"', answer.stdout).group(1)
    return f"{ref.rsplit(':', 1)[0]}@{digest}"


@pytest.fixture(scope="module")
def host(lab_hosts):
    """The last lab host, deployed with every service (the modules before leave it so), with a marker in
    Ollama's data and the checksums of that data taken."""
    host = lab_hosts[-1]
    run_pyinfra_cli(SERVER, limit=host["name"], timeout=1500)
    ssh(host, f"echo precious > {DATA}/keep-through-updates.txt")
    host = dict(host, checksums=ssh(host, CHECKSUMS).stdout)
    yield host
    # leave it on the default image for the modules after this one
    run_pyinfra_cli(OLLAMA, limit=host["name"], check=False)


def _data_unchanged(host) -> None:
    assert ssh(host, CHECKSUMS).stdout == host["checksums"]


def test_an_update_to_v2_is_previewed_pulled_first_pinned_and_healthy(host):
    name = host["name"]
    before = _pin(host)
    assert before["image"] == V1
    ssh(host, f"docker image rm {OLLAMA_LAB_V2} >/dev/null 2>&1; true")  # so that the run pulls it
    dry = run_pyinfra_cli(OLLAMA, "--dry", *_image(OLLAMA_LAB_V2), limit=name)
    planned = dry.planned_changes()
    (op,) = [op for op in planned if op.startswith("Compose services | ollama: image ")]
    old, new = _short(before["pinned"]), _short(_registry_digest(host, OLLAMA_LAB_V2))
    assert op == (f"Compose services | ollama: image {V1} ({old}) -> {OLLAMA_LAB_V2} ({new}) "
                  "(rolled back if not healthy)")
    assert PULL_OP in planned
    assert _pin(host) == before  # --dry changed nothing

    done = run_pyinfra_cli(OLLAMA, *_image(OLLAMA_LAB_V2), limit=name)
    assert PULL_OP in done.changed_operations() and op in done.changed_operations()
    pin = _pin(host)
    assert pin["image"] == OLLAMA_LAB_V2
    assert pin["pinned"] == _registry_digest(host, OLLAMA_LAB_V2)
    image, image_id, health, _ = _running(host)
    assert (image, health) == (pin["pinned"], "healthy")
    held = ssh(host, f"docker image inspect --format '{{{{.Id}}}}' {pin['pinned']}").stdout.strip()
    assert held == image_id
    assert _pin_of_text(ssh(host, f"cat {PREVIOUS}").stdout)["pinned"] == before["pinned"]
    assert run_pyinfra_cli(OLLAMA, *_image(OLLAMA_LAB_V2), limit=name).changed == 0
    _data_unchanged(host)


def test_an_unhealthy_v3_is_rolled_back_to_v2_with_one_line(host):
    name = host["name"]
    v2 = _pin(host)
    assert v2["image"] == OLLAMA_LAB_V2
    failed = run_pyinfra_cli(OLLAMA, *_image(OLLAMA_LAB_V3_UNHEALTHY), limit=name, check=False, timeout=900)
    assert failed.returncode != 0
    assert_clean(failed)
    text = _output(failed)
    line = next(line for line in text.splitlines() if "is not healthy:" in line)
    assert re.search(
        rf"ollama: the new image {re.escape(OLLAMA_LAB_V3_UNHEALTHY)} \(\S+@sha256:[0-9a-f]{{64}}\) is not "
        rf"healthy: rolled back to {re.escape(v2['pinned'])}, healthy again\. Health check: .+", line), line
    assert _pin(host) == v2
    image, _, health, _ = _running(host)
    assert (image, health) == (v2["pinned"], "healthy")
    assert run_pyinfra_cli(OLLAMA, *_image(OLLAMA_LAB_V2), limit=name).changed == 0
    _data_unchanged(host)


def test_a_tag_that_does_not_exist_fails_the_pull_before_anything_stops(host):
    name = host["name"]
    before = _running(host)
    missing = V1.rsplit(":", 1)[0] + ":no-such-tag"
    failed = run_pyinfra_cli(OLLAMA, *_image(missing), limit=name, check=False)
    assert failed.returncode != 0
    assert_clean(failed)
    assert f"could not pull {missing}: " in _output(failed)
    assert "nothing was stopped or changed" in _output(failed)
    assert _running(host) == before  # not even restarted
    _data_unchanged(host)


def test_a_moved_tag_changes_nothing_until_update_moves_the_pin(host):
    name = host["name"]
    _push(images.STANDIN_IMAGES["ollama"], MOVING)  # the tag first holds v1's image
    run_pyinfra_cli(OLLAMA, *_image(MOVING), limit=name)
    pinned = _pin(host)["pinned"]
    assert pinned == _registry_digest(host, MOVING)
    _push(images.EXTRA_STANDIN_IMAGES["ollama-lab-v2"], MOVING)  # the tag moves to v2's image
    moved = _registry_digest(host, MOVING)
    assert moved != pinned
    # a plain run does not follow the tag
    assert run_pyinfra_cli(OLLAMA, *_image(MOVING), limit=name).changed == 0
    assert _running(host)[0] == pinned
    report = run_pyinfra_cli("deploys/outdated.py", *_image(MOVING), limit=name)
    (line,) = [line for line in _output(report).splitlines() if line.strip().startswith("ollama ")]
    assert f"{_short(pinned)}  {_short(moved)}  the tag has moved: deploys/update.py updates it" in line
    assert report.changed == 0
    dry = run_pyinfra_cli("deploys/update.py", "--dry", *_image(MOVING), "--data", "update_services=ollama",
                          limit=name)
    assert (f"Compose services | ollama: image {MOVING} ({_short(pinned)}) -> {MOVING} ({_short(moved)}) "
            "(rolled back if not healthy)") in dry.planned_changes()
    run_pyinfra_cli("deploys/update.py", *_image(MOVING), "--data", "update_services=ollama", limit=name)
    assert _pin(host)["pinned"] == moved
    image, _, health, _ = _running(host)
    assert (image, health) == (moved, "healthy")
    again = run_pyinfra_cli("deploys/update.py", *_image(MOVING), "--data", "update_services=ollama",
                            limit=name)
    assert again.changed == 0
    _data_unchanged(host)


def _proxy_domains(host) -> set[str]:
    import json

    return {h["domain_names"][0] for h in json.loads(npm_api(host, "list"))}


def _dns(host, name: str) -> list[str]:
    return ssh(host, f"docker exec pihole dig +short @{host['tailscale_ip']} {name}").stdout.split()


def test_removing_ollama_takes_its_container_proxy_host_and_record_and_adding_it_back_returns_them(host):
    name = host["name"]
    subdomain = f"ollama.{DOMAIN}"
    assert subdomain in _proxy_domains(host) and _dns(host, subdomain) == [host["tailscale_ip"]]
    without = ["--data", "services=nginx-proxy-manager,pihole,comfyui,open-webui"]
    dry = run_pyinfra_cli(SERVER, "--dry", *without, limit=name)
    planned = dry.planned_changes()
    assert "Compose services | ollama: not placed on this host: containers down (data kept)" in planned
    assert any(op.endswith(f"{subdomain}: retired: proxy host removed") for op in planned), planned
    assert any("retired: DNS record" in op and subdomain in op for op in planned), planned
    run_pyinfra_cli(SERVER, *without, limit=name, timeout=900)
    assert ssh(host, "docker ps -aq --filter name=^ollama$").stdout.strip() == ""
    assert subdomain not in _proxy_domains(host)
    assert _dns(host, subdomain) == []
    assert run_pyinfra_cli(SERVER, *without, limit=name).changed == 0
    _data_unchanged(host)
    run_pyinfra_cli(SERVER, limit=name, timeout=900)  # back, on the same data
    assert subdomain in _proxy_domains(host) and _dns(host, subdomain) == [host["tailscale_ip"]]
    assert _running(host)[2] == "healthy"
    _data_unchanged(host)
    assert run_pyinfra_cli(SERVER, limit=name).changed == 0
