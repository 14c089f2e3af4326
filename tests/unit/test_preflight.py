"""Preflight rules (deploys/library/preflight.py) over fact data taken from the fact fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploys.library.catalog import Service
from deploys.library.plan import published_ports
from deploys.library.preflight import (
    FAIL,
    PASS,
    WARN,
    Observed,
    check_images,
    check_sshd,
    checks,
    failed,
    table,
)
from deploys.library.settings import load_settings

FACTS = Path(__file__).resolve().parents[1] / "facts"

LAB = {
    "domain": "lab.home.arpa",
    "tailscale_allowed_ips": "100.64.0.0/10",
    "tailscale_install": False,
    "tailscale_ip": "100.64.0.10",
    "min_free_disk_gb": 1,
    "docker_source": "distro",
    "pihole_password": "pihole-password",
    "npm_admin_email": "admin@lab.home.arpa",
    "npm_admin_password": "npm-password",
    "open_webui_admin_email": "admin@home.example.com",
    "open_webui_admin_password": "webui-password",
}
DEBIAN_12 = {"name": "Debian", "major": 12, "minor": None,
             "release_meta": {"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "ID": "debian",
                              "VERSION_ID": "12"}}


def fact(folder: str, case: str):
    return json.loads((FACTS / folder / f"{case}.json").read_text())["fact"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("HOMELAB_"):
            monkeypatch.delenv(key)


NETWORK = fact("host.HostNetwork", "documented-debian12-lab-host")  # tailscale0 100.64.0.10, eth0 172.17.0.2


def settings(**changes):
    return load_settings({**LAB, **changes}, env_file=None)


def observed(**changes) -> Observed:
    """A bare Debian 12 lab host as recorded: Docker and firewalld there, no GPU, nothing deployed."""
    overrides = changes.pop("settings", {})
    config = None if overrides is None else settings(**overrides)
    base = dict(
        host="@homelab/lab",
        settings=config,
        services=list(config.services) if config else [],
        connection="root@127.0.0.1:2222",
        distro=DEBIAN_12,
        python="/usr/bin/python3",
        docker_binary="/usr/bin/docker",
        firewalld_binary="/usr/bin/firewall-cmd",
        units={"docker.service": True, "firewalld.service": True},
        compose_version="2.40.3",
        packages={"docker.io": ["20.10.24+dfsg1-1+deb12u1"], "firewalld": ["1.3.3-1~deb12u1"]},
        running_containers=[],
        gpu=fact("gpu.NvidiaGpus", "recorded-debian12-lab-no-gpu"),
        disk=fact("host.DiskFree", "recorded-debian12-lab-cold-storage"),
        tailscale={"installed": False, "backend_state": None, "ips": []},
        tailscale_ip_on_host="100.64.0.10",
        addresses=NETWORK["addresses"],
        routes=NETWORK["routes"],
        firewalld=fact("firewalld.FirewalldZones", "recorded-debian12-lab"),
        sockets=fact("host.ListeningSockets", "recorded-debian12-lab"),
        projects={},
    )
    base.update(changes)
    if "published" not in changes:  # one host, its own proxy: each service's host ports (the plan's rule)
        base["published"] = [(p.service, p.port) for s in base["services"] for p in published_ports(s, False)]
    return Observed(**base)


def row(rows, name):
    found = [r for r in rows if r.check == name]
    assert len(found) == 1, rows
    return found[0]


def test_bare_lab_host_has_no_fail_and_warns_about_the_cpu():
    rows = checks(observed())
    assert not failed(rows), table("lab", rows)
    assert [r.check for r in rows if r.result == WARN] == ["gpu", "https"]  # HOMELAB_TLS=off: plain HTTP
    assert "ollama, comfyui will run on the CPU" in row(rows, "gpu").detail
    assert row(rows, "tailscale").detail.startswith("managed elsewhere")
    assert row(rows, "disk").result == PASS and "75.9 GiB free" in row(rows, "disk").detail
    assert [r.check for r in rows if r.check.startswith("port ")] == [
        "port 80/tcp", "port 443/tcp", "port 81/tcp", "port 53/tcp", "port 53/udp"]


def test_before_the_first_deploy_missing_docker_and_stopped_firewalld_only_warn():
    obs = observed(docker_binary=None, packages={},
                   units={"docker.service": False, "firewalld.service": False}, compose_version=None,
                   firewalld={"running": False, "zones": {}})
    rows = checks(obs)
    assert not failed(rows)
    assert row(rows, "docker") == (
        "docker", WARN, "not installed yet: the deploy installs docker.io (HOMELAB_DOCKER_SOURCE=distro)")
    assert row(rows, "firewalld").result == WARN and "not running" in row(rows, "firewalld").detail


def test_firewalld_absent_warns():
    assert row(checks(observed(firewalld_binary=None, firewalld={})), "firewalld").result == WARN


@pytest.mark.parametrize(
    ("distro", "result"),
    [
        (DEBIAN_12, PASS),
        ({"name": "Debian", "major": 11, "release_meta": {"ID": "debian", "VERSION_ID": "11"}}, FAIL),
        ({"name": "Fedora", "major": 42, "release_meta": {"ID": "fedora", "VERSION_ID": "42"}}, PASS),
        ({"name": "Arch", "major": None, "release_meta": {"ID": "arch"}}, FAIL),
        ({}, FAIL),
    ],
)
def test_os_support(distro, result):
    found = row(checks(observed(distro=distro)), "os")
    assert found.result == result
    if result == FAIL:
        assert "Ubuntu 22, 24" in found.detail


def test_h200_passes_gpu_and_vram():
    rows = checks(observed(gpu=fact("gpu.NvidiaGpus", "recorded-h200")))
    assert row(rows, "gpu").result == PASS
    assert "NVIDIA H200 140 GiB, driver 580.159.04, CUDA 13.0" in row(rows, "gpu").detail
    assert row(rows, "vram").result == PASS


def test_small_gpu_warns_which_service_needs_more_vram():
    gpu = fact("gpu.NvidiaGpus", "recorded-h200")
    gpu["gpus"][0]["memory_total_mib"] = 6144
    found = row(checks(observed(gpu=gpu)), "vram")
    assert found.result == WARN
    assert "comfyui needs ~8 GiB" in found.detail and "ollama" not in found.detail


def test_driver_not_loaded_on_a_host_set_up_for_a_gpu_fails():
    """nvidia-smi fails where the container toolkit is installed: a GPU host with a broken driver."""
    rows = checks(observed(gpu=fact("gpu.NvidiaGpus", "documented-driver-not-loaded")))
    found = row(rows, "gpu")
    assert found.result == FAIL and failed(rows)
    assert found.detail.startswith("nvidia-smi fails (NVIDIA-SMI has failed because it couldn't communicate")
    assert "NVIDIA container toolkit 1.18.0" in found.detail
    assert "usually the driver's module was not built for the running kernel (akmod/DKMS" in found.detail
    assert "HOMELAB_GPU_DOWNGRADE=allow" in found.detail
    assert all(r.check != "vram" for r in rows)


def test_driver_error_without_any_gpu_setup_only_warns():
    gpu = fact("gpu.NvidiaGpus", "documented-driver-not-loaded")
    gpu["toolkit_version"] = None  # nothing else shows a GPU was ever set up
    found = row(checks(observed(gpu=gpu)), "gpu")
    assert found.result == WARN and found.detail.startswith("nvidia-smi: NVIDIA-SMI has failed")


def test_module_not_rebuilt_after_a_kernel_update_fails_with_the_cause_and_remedy():
    gpu = fact("gpu.NvidiaGpus", "documented-akmod-not-rebuilt-after-kernel-update")
    found = row(checks(observed(gpu=gpu)), "gpu")
    assert found.result == FAIL
    assert ("Docker has the nvidia runtime; NVIDIA container toolkit 1.17.8; CDI spec /etc/cdi/nvidia.yaml; "
            "nvidia kernel module for 6.11.4-301.fc41.x86_64") in found.detail
    assert ("built for 6.11.4-301.fc41.x86_64 but not for the running kernel 6.12.5-200.fc41.x86_64"
            in found.detail)
    assert "(`akmods --force --kernels 6.12.5-200.fc41.x86_64` with RPM Fusion" in found.detail
    assert "`dkms autoinstall -k 6.12.5-200.fc41.x86_64`" in found.detail


def test_module_built_but_not_loaded_says_modprobe():
    gpu = fact("gpu.NvidiaGpus", "documented-dkms-module-built-not-loaded")
    found = row(checks(observed(gpu=gpu)), "gpu")
    assert found.result == FAIL
    assert "built for the running kernel 6.8.0-87-generic but not loaded: run `modprobe nvidia`" in (
        found.detail)


def test_broken_gpu_fails_even_without_gpu_services_the_deploy_refuses_the_host():
    obs = observed(gpu=fact("gpu.NvidiaGpus", "documented-akmod-not-rebuilt-after-kernel-update"),
                   services=[Service.NGINX_PROXY_MANAGER, Service.PIHOLE])
    assert row(checks(obs), "gpu").result == FAIL


def test_broken_gpu_with_downgrade_allowed_warns():
    obs = observed(gpu=fact("gpu.NvidiaGpus", "documented-akmod-not-rebuilt-after-kernel-update"),
                   settings={"gpu_downgrade": "allow"})
    found = row(checks(obs), "gpu")
    assert found.result == WARN
    assert "HOMELAB_GPU_DOWNGRADE=allow: the deploy goes on without the GPU (ollama, comfyui on the CPU" in (
        found.detail)


def _driver_with_cuda(version: str) -> dict:
    gpu = fact("gpu.NvidiaGpus", "recorded-h200")
    gpu["cuda_version"] = version
    return gpu


def test_cuda_of_the_driver_meets_the_pinned_images():
    rows = checks(observed(gpu=fact("gpu.NvidiaGpus", "recorded-h200")))
    assert row(rows, "cuda comfyui") == (
        "cuda comfyui", PASS, "yanwk/comfyui-boot:cu128-slim needs CUDA 12.8; the driver supports 13.0")
    assert row(rows, "cuda ollama").result == PASS


def test_driver_too_old_for_comfyui_fails_naming_image_versions_and_remedy():
    rows = checks(observed(gpu=_driver_with_cuda("12.4")))
    found = row(rows, "cuda comfyui")
    assert found.result == FAIL and failed(rows)
    assert found.detail == (
        "yanwk/comfyui-boot:cu128-slim needs CUDA 12.8, the driver supports 12.4: comfyui does not start; "
        "upgrade the NVIDIA driver, or pin an older image (HOMELAB_IMAGE_COMFYUI)"
    )
    assert row(rows, "cuda ollama").result == PASS  # 12.4 >= 12.1


def test_driver_too_old_for_ollama_warns_it_falls_back_to_the_cpu():
    found = row(checks(observed(gpu=_driver_with_cuda("12.0"))), "cuda ollama")
    assert found.result == WARN
    assert found.detail.startswith(
        "ollama/ollama:0.12.6 needs CUDA 12.1, the driver supports 12.0: it runs on the CPU")


def test_cuda_of_a_custom_image_is_not_guessed():
    obs = observed(gpu=_driver_with_cuda("12.4"), settings={"image_comfyui": "example/comfy:1.0"})
    found = row(checks(obs), "cuda comfyui")
    assert found.result == WARN and found.detail.startswith("not checked: example/comfy:1.0")


def test_no_cuda_rows_without_a_gpu():
    assert all(not r.check.startswith("cuda") for r in checks(observed()))


def test_no_gpu_with_skip_policy_says_left_out():
    found = row(checks(observed(settings={"ai_without_gpu": "skip"})), "gpu")
    assert found.result == WARN and "left out" in found.detail


def test_no_gpu_service_placed_no_warning():
    obs = observed(services=[Service.NGINX_PROXY_MANAGER, Service.PIHOLE])
    assert row(checks(obs), "gpu").result == PASS


def test_low_disk_warns_in_gib():
    found = row(checks(observed(settings={"min_free_disk_gb": 100})), "disk")
    assert found.result == WARN and "HOMELAB_MIN_FREE_DISK_GB=100" in found.detail


def test_disk_of_missing_path_names_the_parent():
    disk = fact("host.DiskFree", "recorded-h200-missing-path")
    found = row(checks(observed(disk=disk)), "disk")
    assert "not created yet" in found.detail


def test_disk_unreadable_warns():
    assert row(checks(observed(disk=None)), "disk").result == WARN


def test_tailscale_running_and_ip_from_host():
    status = fact("tailscale.TailscaleStatus", "documented-running")
    rows = checks(observed(settings={"tailscale_install": True, "tailscale_ip": None}, tailscale=status))
    assert row(rows, "tailscale").result == PASS
    assert "homelab.tail1234.ts.net" in row(rows, "tailscale").detail
    assert row(rows, "tailscale ip").detail == "100.64.0.10 (read from the host)"


def test_tailscale_needs_login_warns():
    status = fact("tailscale.TailscaleStatus", "documented-needs-login")
    rows = checks(observed(settings={"tailscale_install": True}, tailscale=status))
    assert row(rows, "tailscale").result == WARN


def test_no_tailscale_ip_and_no_authkey_fails():
    rows = checks(observed(settings={"tailscale_install": True, "tailscale_ip": None},
                           tailscale_ip_on_host=None))
    assert row(rows, "tailscale ip").result == FAIL
    assert failed(rows)
    assert row(rows, "host ports").result == WARN  # cannot be checked without an address


def test_no_tailscale_ip_with_authkey_warns():
    config = {"tailscale_install": True, "tailscale_ip": None, "tailscale_authkey": "k"}
    rows = checks(observed(settings=config, tailscale_ip_on_host=None))
    assert row(rows, "tailscale ip").result == WARN


def test_tailscale_ip_setting_differs_from_host_warns():
    found = row(checks(observed(tailscale_ip_on_host="100.64.0.99")), "tailscale ip")
    assert found.result == WARN and "100.64.0.99" in found.detail


def test_configured_tailscale_ip_on_tailscale0_passes():
    found = row(checks(observed()), "tailscale ip")
    assert found == ("tailscale ip", PASS, "100.64.0.10 from HOMELAB_TAILSCALE_IP (also on the host)")


def test_configured_tailscale_ip_on_no_interface_fails():
    rows = checks(observed(settings={"tailscale_ip": "100.64.0.77"}))
    found = row(rows, "tailscale ip")
    assert found.result == FAIL and failed(rows)
    assert found.detail.startswith(
        "100.64.0.77 from HOMELAB_TAILSCALE_IP is on none of the host's interfaces (docker0, eth0, lo, "
        "tailscale0): the ports cannot bind to it; set the address `tailscale ip -4` prints")


def test_configured_tailscale_ip_not_there_yet_before_the_join_warns():
    config = {"tailscale_install": True, "tailscale_ip": "100.64.0.77", "tailscale_authkey": "tskey-auth-k1"}
    status = fact("tailscale.TailscaleStatus", "documented-needs-login")
    found = row(checks(observed(settings=config, tailscale=status, tailscale_ip_on_host=None,
                                addresses={"lo": ["127.0.0.1/8"]})), "tailscale ip")
    assert found.result == WARN and "the deploy joins the tailnet" in found.detail


def test_configured_tailscale_ip_outside_the_tailnet_warns_naming_the_interface():
    network = fact("host.HostNetwork", "documented-tailscale-cli-and-lan")
    rows = checks(observed(settings={"tailscale_ip": "192.168.1.5"}, addresses=network["addresses"],
                           tailscale_ip_on_host=network["tailscale_ip"]))
    found = row(rows, "tailscale ip")
    assert found.result == WARN and not failed(rows)
    assert found.detail == (
        "192.168.1.5 from HOMELAB_TAILSCALE_IP is outside the tailnet ranges (100.64.0.0/10, "
        "fd7a:115c:a1e0::/48): NGINX Proxy Manager and Pi-hole would publish on enp3s0, not on Tailscale")


def test_interfaces_unreadable_warns():
    found = row(checks(observed(addresses=None)), "tailscale ip")
    assert found.result == WARN and "not checked against the host's interfaces" in found.detail


def test_docker_subnet_unset_no_row():
    assert all(r.check != "docker subnet" for r in checks(observed()))


def test_docker_subnet_free_passes():
    found = row(checks(observed(settings={"docker_subnet": "172.30.0.0/16"})), "docker subnet")
    assert found == ("docker subnet", PASS, "172.30.0.0/16 overlaps none of the host's routes")


@pytest.mark.parametrize(("subnet", "route"), [("172.18.0.0/16", "172.18.0.0/16"),
                                              ("172.18.5.0/24", "172.18.0.0/16"),
                                              ("192.168.0.0/16", "192.168.1.0/24")])
def test_docker_subnet_overlapping_a_route_of_the_host_fails_naming_it(subnet, route):
    routes = [*NETWORK["routes"], "192.168.1.0/24"]
    rows = checks(observed(settings={"docker_subnet": subnet}, routes=routes))
    found = row(rows, "docker subnet")
    assert found.result == FAIL and failed(rows)
    assert found.detail.startswith(f"{subnet} from HOMELAB_DOCKER_SUBNET overlaps the host's route {route}:")


def test_docker_subnet_route_of_our_own_network_passes():
    routes = [*NETWORK["routes"], "172.30.0.0/16"]
    networks = {"self-hosted": {"subnets": ["172.30.0.0/16"]}, "other": {"subnets": ["172.31.0.0/16"]}}
    found = row(checks(observed(settings={"docker_subnet": "172.30.0.0/16"}, routes=routes,
                                docker_networks=networks)), "docker subnet")
    assert found.result == PASS and "the self-hosted network's own" in found.detail
    obs = observed(settings={"docker_subnet": "172.31.0.0/16"}, routes=[*routes, "172.31.0.0/16"],
                   docker_networks=networks)
    found = row(checks(obs), "docker subnet")
    assert found.result == FAIL and "route 172.31.0.0/16" in found.detail


def test_docker_subnet_routes_unreadable_warns():
    found = row(checks(observed(settings={"docker_subnet": "172.30.0.0/16"}, routes=None)), "docker subnet")
    assert found.result == WARN


def test_invalid_settings_fail_and_stop_the_rest():
    obs = observed(settings=None, settings_problems=["HOMELAB_DOMAIN: 'BAD' is not valid"], services=[])
    rows = checks(obs)
    assert row(rows, "settings").result == FAIL
    assert "HOMELAB_DOMAIN" in row(rows, "settings").detail
    assert all(not r.check.startswith("port") for r in rows)


def _socket(address, port, proto="tcp", process="docker-proxy"):
    return {"proto": proto, "address": address, "port": port, "process": process}


def _projects(*running):
    return {name: {"containers": [{"name": name, "state": "running"}]} for name in running}


def test_ports_held_by_our_own_containers_pass():
    sockets = [_socket("100.64.0.10", p) for p in (80, 443, 81, 53)] + [_socket("100.64.0.10", 53, "udp")]
    rows = checks(observed(sockets=sockets, projects=_projects("nginx-proxy-manager", "pihole")))
    assert not failed(rows)
    assert row(rows, "port 81/tcp").detail == "held by our container nginx-proxy-manager on 100.64.0.10"


def test_port_held_by_docker_proxy_of_a_stopped_service_fails():
    rows = checks(observed(sockets=[_socket("100.64.0.10", 81)], projects=_projects("pihole")))
    assert row(rows, "port 81/tcp").result == FAIL


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "*", "100.64.0.10"])
def test_port_taken_by_another_program_fails(address):
    rows = checks(observed(sockets=[_socket(address, 53, "udp", "systemd-resolve")]))
    found = row(rows, "port 53/udp")
    assert found.result == FAIL and "systemd-resolve" in found.detail
    assert row(rows, "port 53/tcp").result == PASS


def test_port_on_another_address_is_free():
    rows = checks(observed(sockets=[_socket("127.0.0.53", 53, "udp", "systemd-resolve")]))
    assert row(rows, "port 53/udp").result == PASS


def test_port_user_unknown_warns():
    rows = checks(observed(sockets=[_socket("0.0.0.0", 80, "tcp", None)]))
    assert row(rows, "port 80/tcp").result == WARN


def test_ss_missing_warns_once():
    rows = checks(observed(sockets=fact("host.ListeningSockets", "ss-missing")))
    assert row(rows, "host ports").result == WARN


def test_ports_only_for_services_on_this_host():
    rows = checks(observed(services=[Service.OLLAMA]))
    assert all(not r.check.startswith("port") for r in rows)


def test_table_is_readable():
    text = table("@homelab/lab", checks(observed()))
    lines = text.splitlines()
    assert lines[0] == "Preflight for @homelab/lab"
    assert lines[1].split() == ["check", "result", "detail"]
    assert lines[-1].endswith("0 FAIL: ready for the deploy")
    assert "NOT READY" in table("x", checks(observed(distro={})))


# -- an existing Docker engine (deploys/library/engine.py) ---
FEDORA_41 = {"name": "Fedora", "major": 41, "minor": None,
             "release_meta": {"PRETTY_NAME": "Fedora Linux 41 (Server Edition)", "ID": "fedora",
                              "VERSION_ID": "41"}}


def test_installed_engine_is_named_and_kept_by_default():
    rows = checks(observed(settings={"docker_source": "auto"}, running_containers=["jellyfin"]))
    assert row(rows, "docker") == (
        "docker", PASS, "docker.io installed, kept (HOMELAB_DOCKER_SOURCE=auto); running; compose v2.40.3")
    fedora = checks(observed(settings={"docker_source": "auto"}, distro=FEDORA_41,
                             packages={"moby-engine": ["27.3.1-1.fc41"]}))
    assert row(fedora, "docker").detail.startswith("moby-engine installed, kept (HOMELAB_DOCKER_SOURCE=auto)")


def test_explicit_other_source_with_running_containers_fails_naming_them():
    running = ["jellyfin", "pihole"]
    rows = checks(observed(settings={"docker_source": "docker-ce"}, running_containers=running))
    assert failed(rows)
    assert row(rows, "docker").result == FAIL
    assert row(rows, "docker").detail.startswith(
        "HOMELAB_DOCKER_SOURCE=docker-ce would replace the installed docker.io, which has 2 running "
        "container(s): jellyfin, pihole; the deploy does not remove the engine under running containers")


def test_explicit_other_source_without_running_containers_warns_of_the_replacement():
    rows = checks(observed(settings={"docker_source": "docker-ce"}))
    assert row(rows, "docker") == ("docker", WARN, "docker.io installed, no container running: the deploy "
                                   "replaces it with docker-ce (HOMELAB_DOCKER_SOURCE=docker-ce)")


def test_podman_docker_fails_under_auto_and_is_replaced_on_an_explicit_source():
    podman = {"podman-docker": ["5.2.2-1.fc41"]}
    rows = checks(observed(settings={"docker_source": "auto"}, distro=FEDORA_41, packages=podman))
    assert row(rows, "docker").result == FAIL and "podman-docker is installed" in row(rows, "docker").detail
    rows = checks(observed(settings={"docker_source": "docker-ce"}, distro=FEDORA_41, packages=podman))
    assert row(rows, "docker").result == WARN and "replaces it with docker-ce" in row(rows, "docker").detail


# -- images: what each deployed service runs, pinned by digest ------------------------------------
PINNED = "ollama/ollama@sha256:" + "0f" * 32


def ollama_running(image: str) -> dict:
    return {"ollama": {"containers": [{"name": "ollama", "service": "ollama", "state": "running",
                                       "health": "healthy", "image": image}]}}


def image_row(**changes):
    return row(check_images(observed(**changes)), "image")


def test_a_pinned_service_running_its_pin_passes():
    found = image_row(projects=ollama_running(PINNED),
                      pins={"ollama": {"image": "ollama/ollama:0.12.6", "pinned": PINNED}})
    assert found.result == PASS
    assert found.detail == "ollama: ollama/ollama:0.12.6 pinned to sha256:0f0f0f0f0f0f (runs it)"


def test_a_changed_image_setting_warns_that_the_next_deploy_updates():
    found = image_row(projects=ollama_running(PINNED), settings={"image_ollama": "ollama/ollama:0.13.0"},
                      pins={"ollama": {"image": "ollama/ollama:0.12.6", "pinned": PINNED}})
    assert found.result == WARN
    assert "asks for ollama/ollama:0.13.0: the next deploy updates it" in found.detail


def test_a_container_running_something_else_than_its_pin_warns():
    found = image_row(projects=ollama_running("ollama/ollama:0.12.6"),
                      pins={"ollama": {"image": "ollama/ollama:0.12.6", "pinned": PINNED}})
    assert found.result == WARN and "not its pin" in found.detail


def test_an_install_from_before_pins_warns_and_nothing_deployed_says_nothing():
    found = image_row(projects=ollama_running("ollama/ollama:0.12.6"), pins={"ollama": None})
    assert found.result == WARN and "not pinned" in found.detail
    assert check_images(observed()) == []


# -- sshd -------------------------------------------------------------------------------------------
def _sshd(case: str, user: str = "homelab", password: bool = False, **changes):
    from deploys.library.hardening import Login, sshd_policy

    config = settings(**changes)
    return check_sshd(observed(settings=changes, sshd=fact("sshd.SshdSettings", case),
                               sshd_policy=sshd_policy(config, Login(True, user, password))))


def test_sshd_stock_warns_what_the_next_deploy_sets():
    (only,) = _sshd("recorded-debian12-lab-no-drop-in")
    assert only.result == WARN
    assert only.detail == ("the next deploy sets passwordauthentication yes -> no, permitrootlogin "
                           "without-password -> no (confirmed by a second login, put back otherwise)")


def test_sshd_as_the_deploy_sets_it_passes():
    (only,) = _sshd("recorded-debian12-lab-drop-in", user="root")
    assert only.result == PASS
    assert only.detail == ("passwordauthentication no, kbdinteractiveauthentication no, "
                           "permitrootlogin without-password")


def test_sshd_refusing_its_configuration_fails():
    (only,) = _sshd("recorded-debian12-lab-refused-config")
    assert only.result == FAIL
    assert 'unsupported option "maybe"' in only.detail


def test_sshd_part_left_alone_for_a_password_login_is_a_warning():
    rows = _sshd("recorded-debian12-lab-no-drop-in", password=True)
    assert [r.result for r in rows] == [WARN, WARN]
    assert "SSH password logins stay on" in rows[0].detail


# -- monitoring ------------------------------------------------------------------------------------
def _watched_plan(**changes):
    from tests.planning import RESOURCES, WITH_GPU, WITHOUT_GPU, inventory
    from tests.planning import settings as plan_settings

    s = plan_settings(monitoring="true", grafana_admin_password="grafana-password", **changes)
    plans = inventory(("core", ("core",), s), ("gpu", ("gpu",), s),
                      addresses={"core": "100.64.0.1", "gpu": "100.64.0.2"}, gpus={"gpu": True})
    from deploys.library.plan import plan_host

    gpus = {"core": WITHOUT_GPU, "gpu": WITH_GPU}
    return {name: plan_host(plans, name, tailscale_ip=plans.address_of(name), gpu=gpu, resources=RESOURCES)
            for name, gpu in gpus.items()}


def test_monitoring_without_a_webhook_warns_that_alerts_reach_nobody():
    plans = _watched_plan()
    on = {"monitoring": "true", "grafana_admin_password": "grafana-password"}
    core = row(checks(observed(settings=on, monitoring=plans["core"].monitoring, monitoring_host="core")),
               "monitoring")
    assert core.result == WARN
    assert "alerts reach nobody: set HOMELAB_MONITORING_WEBHOOK_URL" in core.detail
    assert "Prometheus here: 9 scrape targets on core, gpu, 6 probes" in core.detail
    gpu = row(checks(observed(settings=on, services=list(plans["gpu"].services), monitoring=None,
                              monitoring_host="core")), "monitoring")
    assert (gpu.result, gpu.detail) == (PASS, "node-exporter, cadvisor, dcgm-exporter here, scraped by core "
                                                "over the tailnet")


def test_monitoring_with_a_webhook_passes_and_never_shows_it():
    hook = "https://ntfy.example/secret-topic-123"
    plans = _watched_plan(monitoring_webhook_url=hook)
    on = {"monitoring": "true", "grafana_admin_password": "grafana-password", "monitoring_webhook_url": hook}
    rows = checks(observed(settings=on, monitoring=plans["core"].monitoring, monitoring_host="core"))
    assert row(rows, "monitoring").result == PASS
    assert "secret-topic" not in table("core", rows)


def test_no_monitoring_row_while_it_is_off():
    assert not [r for r in checks(observed()) if r.check == "monitoring"]
