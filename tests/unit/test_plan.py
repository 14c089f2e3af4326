"""The host plan: placement by inventory group, published ports and the zone, proxy routes and DNS,
the GPU rules -- each decided once, for every tier."""

import pytest

from deploys.library.catalog import Port, Service, selectable_services
from deploys.library.errors import PlanError
from deploys.library.plan import plan_host
from tests.planning import WITH_GPU, WITHOUT_GPU, inventory, one_host, settings

AI = (Service.OLLAMA, Service.COMFYUI, Service.OPEN_WEBUI)
CORE = (Service.NGINX_PROXY_MANAGER, Service.PIHOLE)
FIVE = selectable_services()  # HOMELAB_SERVICES's services (the monitoring set is off by default)
SETTINGS = settings()
# with the monitoring set off, Grafana's subdomain is kept absent from the proxy and DNS (turning the set
# off removes what it had there)
GRAFANA = "grafana.home.example.com"


def split(core_ip="100.64.0.1", gpu_ip="100.64.0.2", **changes):
    """An inventory of a `core` host and a `gpu` host; addresses as the hosts report them."""
    s = settings(**changes)
    return inventory(("core-host", ("core",), s), ("gpu-host", ("gpu",), s),
                     addresses={"core-host": core_ip, "gpu-host": gpu_ip})


def plan(plans, name, gpu=WITH_GPU):
    return plan_host(plans, name, tailscale_ip=plans.address_of(name), gpu=gpu)


def test_without_groups_every_enabled_service_goes_everywhere():
    plans = inventory(("a", ("lab_hosts",), SETTINGS), ("b", (), SETTINGS))
    assert plans.placed("a") == plans.placed("b") == FIVE


def test_core_and_gpu_groups_split_the_services():
    plans = inventory(("c", ("core",), SETTINGS), ("g", ("gpu",), SETTINGS),
                      ("both", ("core", "gpu"), SETTINGS), ("other", ("storage",), SETTINGS))
    assert plans.placed("c") == CORE
    assert plans.placed("g") == AI
    assert plans.placed("both") == FIVE
    assert plans.placed("other") == ()
    assert plans.hosts_running(Service.OLLAMA) == ["g", "both"]


def test_settings_still_leave_services_out():
    limited = settings(services="ollama,pihole")
    plans = inventory(("c", ("core",), limited), ("g", ("gpu",), limited))
    assert plans.placed("g") == (Service.OLLAMA,)
    assert plans.placed("c") == (Service.PIHOLE,)
    assert Service.COMFYUI in plan(plans, "g").absent


def test_one_host_publishes_its_host_ports_only_and_the_zone_opens_exactly_those():
    plans = inventory(("server", (), SETTINGS))
    one = plan_host(plans, "server", tailscale_ip="100.64.0.10", gpu=WITH_GPU)
    assert [(p.service, str(p.port)) for p in one.published] == [
        ("nginx-proxy-manager", "80/tcp"), ("nginx-proxy-manager", "443/tcp"),
        ("nginx-proxy-manager", "81/tcp"), ("pihole", "53/tcp"), ("pihole", "53/udp"),
    ]
    assert one.zone.ports == ("80/tcp", "443/tcp", "81/tcp", "53/tcp", "53/udp")
    assert one.zone.sources == ("100.64.0.0/10",)
    assert one.zone.services == ("ssh",)
    assert one.bind_address == "100.64.0.10"
    # every route is served from this host's containers, by name
    assert {(r.domain, r.forward_host, r.forward_port) for r in one.routes} == {
        ("chat.home.example.com", "open-webui", 8080), ("ollama.home.example.com", "ollama", 11434),
        ("comfy.home.example.com", "comfyui", 8188), ("hole.home.example.com", "pihole", 80),
    }
    assert set(one.dns_records.values()) == {"100.64.0.10"}
    assert one.service_url(Service.OLLAMA) == "http://ollama:11434"


def test_a_gpu_host_behind_a_remote_proxy_publishes_exactly_the_upstream_ports():
    plans = split()
    gpu = plan(plans, "gpu-host")
    assert gpu.services == AI
    assert [(p.service, p.port, p.upstream) for p in gpu.published] == [
        ("ollama", Port(11434), True), ("comfyui", Port(8188), True), ("open-webui", Port(8080), True),
    ]
    assert gpu.zone.ports == ("11434/tcp", "8188/tcp", "8080/tcp")  # not 80/443/81/53
    assert gpu.routes == () and gpu.dns_records == {}
    assert gpu.proxy_host == "core-host"


def test_the_core_host_proxies_to_the_gpu_hosts_address_and_resolves_to_itself():
    plans = split()
    core = plan(plans, "core-host", gpu=WITHOUT_GPU)
    assert core.services == CORE
    # Pi-hole's web UI is proxied on the same host: its upstream port stays on the Docker network
    assert [str(p.port) for p in core.published] == ["80/tcp", "443/tcp", "81/tcp", "53/tcp", "53/udp"]
    assert {(r.domain, r.forward_host, r.forward_port) for r in core.routes} == {
        ("chat.home.example.com", "100.64.0.2", 8080), ("ollama.home.example.com", "100.64.0.2", 11434),
        ("comfy.home.example.com", "100.64.0.2", 8188), ("hole.home.example.com", "pihole", 80),
    }
    assert core.dns_records == {
        "chat.home.example.com": "100.64.0.1", "ollama.home.example.com": "100.64.0.1",
        "comfy.home.example.com": "100.64.0.1", "hole.home.example.com": "100.64.0.1",
    }
    # the AI services are not placed here: a deploy takes down their containers if any run
    assert core.absent[:3] == AI


def test_a_configured_tailscale_ip_wins_over_what_the_host_reports():
    s = settings(tailscale_ip="100.100.1.1")
    plans = inventory(("a", (), s), addresses={"a": "100.64.9.9"})
    assert plan_host(plans, "a", tailscale_ip="100.64.9.9", gpu=WITH_GPU).tailscale_ip == "100.100.1.1"


def test_an_unknown_address_of_another_host_is_a_plan_error_naming_it():
    plans = split(gpu_ip=None)
    core = plan(plans, "core-host")
    with pytest.raises(PlanError, match="Tailscale IP of gpu-host is unknown"):
        _ = core.routes
    # nothing else about the host needs it
    assert core.zone.ports


def test_a_service_referring_to_another_on_a_remote_host_reaches_it_over_the_tailnet():
    """Open WebUI on one host and Ollama only on another: Open WebUI's OLLAMA_BASE_URL is the other
    host's Tailscale address, and that host publishes Ollama's port even without a proxy."""
    s = settings(services="ollama,open-webui")
    plans = inventory(("a", ("gpu",), s.model_copy(update={"services": ["open-webui"]})), ("b", ("gpu",), s),
                      addresses={"a": "100.64.0.1", "b": "100.64.0.2"})
    # b runs both; a runs Open WebUI only (its own settings)
    a = plan(plans, "a")
    assert a.service_url(Service.OLLAMA) == "http://100.64.0.2:11434"
    b = plan(plans, "b")
    assert b.service_url(Service.OLLAMA) == "http://ollama:11434"
    assert ("ollama", "11434/tcp") in [(p.service, str(p.port)) for p in b.published]


def test_without_a_gpu_the_ai_services_run_on_the_cpu_or_are_left_out():
    plans = inventory(("a", (), SETTINGS))
    cpu = plan_host(plans, "a", tailscale_ip="100.64.0.1", gpu=WITHOUT_GPU)
    assert cpu.services == FIVE and not cpu.gpu
    assert any("ollama will run on the CPU" in w for w in cpu.warnings)
    skipping = inventory(("a", (), settings(ai_without_gpu="skip")))
    left = plan_host(skipping, "a", tailscale_ip="100.64.0.1", gpu=WITHOUT_GPU)
    assert left.services == CORE
    assert set(left.skipped) == set(AI)


def test_a_broken_driver_on_a_gpu_host_is_a_refusal_unless_downgrade_is_allowed():
    broken = {"gpus": [], "driver_error": "NVIDIA-SMI has failed", "toolkit_version": "1.17.8"}
    plans = inventory(("a", (), SETTINGS))
    refused = plan_host(plans, "a", tailscale_ip="100.64.0.1", gpu=broken)
    assert refused.gpu_refusal and "HOMELAB_GPU_DOWNGRADE=allow" in refused.gpu_refusal
    assert refused.services == FIVE  # kept: each GPU decision refuses instead
    allowed = plan_host(inventory(("a", (), settings(gpu_downgrade="allow"))), "a", tailscale_ip="100.64.0.1",
                        gpu=broken)
    assert allowed.gpu_refusal is None and not allowed.gpu


def test_the_plan_describes_itself_without_secrets():
    text = plan(split(), "core-host").describe()
    assert "chat.home.example.com -> 100.64.0.2:8080" in text
    assert "zone self-hosted" in text
    for secret in ("pihole-secret-value", "npm-secret-value", "webui-secret-value"):
        assert secret not in text


# -- retired routes: a subdomain no host serves any more loses its proxy host and DNS record ----------
def test_a_service_taken_out_of_the_services_is_retired_on_the_proxy_and_dns_host():
    host = one_host(services="nginx-proxy-manager,pihole,ollama,open-webui")
    assert host.retired_routes == ("comfy.home.example.com", GRAFANA)
    assert "comfy.home.example.com" not in [route.domain for route in host.routes]
    assert "comfy.home.example.com" not in host.dns_records
    removed = "  removed       comfy.home.example.com (proxy host and DNS record)"
    assert removed in host.describe().splitlines()


def test_nothing_is_retired_while_every_service_runs_somewhere():
    assert one_host().retired_routes == (GRAFANA,)
    assert [line for line in one_host().describe().splitlines() if "removed" in line] == [
        f"  removed       {GRAFANA} (proxy host and DNS record)"
    ]
    plans = split()
    assert plan(plans, "core-host").retired_routes == (GRAFANA,)
    watched = one_host(monitoring="true", grafana_admin_password="grafana-secret-value")
    assert watched.retired_routes == ()
    assert "removed" not in watched.describe()


def test_a_service_moved_to_another_host_is_not_retired():
    """The AI services leave the core host (it was in both groups) for a GPU host: their containers go
    down on the core host, and its proxy forwards their subdomains to the GPU host."""
    before = plan(inventory(("core-host", ("core", "gpu"), SETTINGS), addresses={"core-host": "100.64.0.1"}),
                  "core-host")
    assert Service.COMFYUI in before.services and before.retired_routes == (GRAFANA,)
    after = plan(split(), "core-host")
    assert Service.COMFYUI in after.absent
    assert after.retired_routes == (GRAFANA,)
    assert ("comfy.home.example.com", "100.64.0.2") in [(r.domain, r.forward_host) for r in after.routes]


def test_services_placed_on_no_host_of_the_inventory_are_retired():
    plans = inventory(("core-host", ("core",), SETTINGS), addresses={"core-host": "100.64.0.1"})
    core = plan(plans, "core-host")
    assert core.retired_routes == (
        "ollama.home.example.com", "comfy.home.example.com", "chat.home.example.com", GRAFANA,
    )
    assert [route.domain for route in core.routes] == ["hole.home.example.com"]


def test_only_the_hosts_running_the_proxy_or_dns_retire_routes_and_say_which_part():
    s = settings(services="pihole,ollama,open-webui")  # no NGINX Proxy Manager, no ComfyUI
    plans = inventory(("core-host", ("core",), s), ("gpu-host", ("gpu",), s),
                      addresses={"core-host": "100.64.0.1", "gpu-host": "100.64.0.2"})
    assert plan(plans, "gpu-host").retired_routes == ()
    core = plan(plans, "core-host")
    assert core.retired_routes == ("comfy.home.example.com", GRAFANA)
    assert "  removed       comfy.home.example.com (DNS record)" in core.describe().splitlines()
