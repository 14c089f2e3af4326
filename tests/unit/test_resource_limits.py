"""Resource limits: HOMELAB_LIMITS over the catalog's defaults, rendered into the compose files, shown by
the plan, checked by the preflight against the host."""

from __future__ import annotations

import dataclasses

import pytest

from deploys.library.catalog import CATALOG, Limits, Service
from deploys.library.compose_files import compose_document, render_compose
from deploys.library.errors import PlanError
from deploys.library.preflight import FAIL, PASS, WARN, Observed, check_limits
from deploys.library.resources import HostResources, normal_cpus, normal_memory
from deploys.library.settings import SettingsError, load_settings
from tests.planning import BASE, RESOURCES, one_host, settings

GIB = 2**30


def container(plan, service):
    return compose_document(plan, service)["services"][service]


def limited_keys(plan, service):
    return {key: value for key, value in container(plan, service).items()
            if key in ("mem_limit", "memswap_limit", "cpus")}


# -- settings ------------------------------------------------------------------------------------
def test_entries_override_the_defaults_part_by_part():
    given = settings(limits="ollama=24g:8, pihole=256m:0.5,comfyui=:50%,open-webui=1536m")
    assert given.limits == {
        "ollama": Limits("24g", "8"), "pihole": Limits("256m", "0.5"),
        "comfyui": Limits(None, "50%"), "open-webui": Limits("1536m", None),
    }


def test_units_are_binary_and_written_in_the_largest_exact_one():
    assert [normal_memory(text) for text in ("1.5g", "2048m", "512M", "1gb", "40%", "none", "0")] == [
        "1536m", "2g", "512m", "1g", "40%", "none", "none"]
    assert [normal_cpus(text) for text in ("0.5", "8", "2.50", "75%", "NONE", "0")] == [
        "0.5", "8", "2.5", "75%", "none", "none"]


def test_host_data_may_give_a_mapping():
    assert settings(limits={"ollama": "none:4"}).limits == {"ollama": Limits("none", "4")}


def test_the_environment_variable_is_read(monkeypatch):
    monkeypatch.setenv("HOMELAB_LIMITS", "pihole=256m")
    assert load_settings(BASE, env_file=None).limits == {"pihole": Limits("256m", None)}


@pytest.mark.parametrize(("value", "message"), [
    ("ollama=24", "ollama: memory '24': expected a size with a unit k, m or g"),
    ("ollama=24x:1", "expected a size with a unit k, m or g (512m, 24g), a share of the host's memory"),
    ("ollama=1g:-1", "ollama: cpus '-1': expected a number of CPUs"),
    ("ollama=1g:0.001", "Docker's smallest CPU limit is 0.01"),
    ("pihole=1m", "Docker's smallest memory limit is 6m"),
    ("ollama=150%", "expected a share above 0% and at most 100%"),
    ("olama=1g", "'olama' is no service; expected one of nginx-proxy-manager, pihole"),
    ("ollama", "expected SERVICE=MEMORY[:CPUS] entries"),
    ("ollama=", "ollama= gives no limit"),
    ("ollama=1g,ollama=2g", "ollama is given twice"),
])
def test_bad_limits_name_the_setting_the_value_and_the_form(value, message):
    with pytest.raises(SettingsError) as raised:
        settings(limits=value)
    (line,) = raised.value.problems
    assert line.startswith(f"HOMELAB_LIMITS (from host data `limits`): {value!r} is not valid: ")
    assert message in line


# -- the catalog ---------------------------------------------------------------------------------
def test_every_service_declares_limits_in_the_settings_form():
    for name, item in CATALOG.items():
        assert item.limits.memory == normal_memory(item.limits.memory), name
        assert item.limits.cpus == normal_cpus(item.limits.cpus), name
    small = (Service.NGINX_PROXY_MANAGER, Service.PIHOLE, Service.OPEN_WEBUI)
    assert all(not CATALOG[name].limits.memory.endswith("%") for name in small)
    assert [CATALOG[name].limits.memory for name in (Service.OLLAMA, Service.COMFYUI)] == ["40%", "40%"]


# -- compose -------------------------------------------------------------------------------------
def test_defaults_rendered_as_compose_service_keys_without_swap():
    plan = one_host()  # 32 GiB, 16 CPUs
    assert limited_keys(plan, Service.PIHOLE) == {"mem_limit": "512m", "memswap_limit": "512m", "cpus": 1.0}
    assert limited_keys(plan, Service.NGINX_PROXY_MANAGER) == {
        "mem_limit": "1g", "memswap_limit": "1g", "cpus": 1.0}
    assert limited_keys(plan, Service.OPEN_WEBUI) == {"mem_limit": "2g", "memswap_limit": "2g", "cpus": 2.0}
    # 40% of 32 GiB is 12.8 GiB: whole GiB, rounded down; no CPU limit
    assert limited_keys(plan, Service.OLLAMA) == {"mem_limit": "12g", "memswap_limit": "12g"}
    assert "mem_limit: 12g\n    memswap_limit: 12g\n" in render_compose(plan, Service.COMFYUI)


def test_a_share_follows_the_host():
    small = one_host(resources=HostResources(memory=16 * GIB, cpus=4), limits="comfyui=:50%")
    assert limited_keys(small, Service.COMFYUI) == {
        "mem_limit": "6g", "memswap_limit": "6g", "cpus": 2.0}
    # a kernel update moves MemTotal by a few MB: the file stays as it is
    moved = one_host(resources=HostResources(memory=16 * GIB - 3 * 2**20, cpus=4), limits="comfyui=:50%")
    assert render_compose(moved, Service.COMFYUI) == render_compose(small, Service.COMFYUI)
    tiny = one_host(resources=HostResources(memory=2 * GIB, cpus=1))
    assert limited_keys(tiny, Service.OLLAMA) == {"mem_limit": "819m", "memswap_limit": "819m"}


def test_settings_lift_or_change_a_limit():
    plan = one_host(limits="ollama=none,pihole=256m:0.5,comfyui=none:none")
    assert limited_keys(plan, Service.OLLAMA) == {}
    assert limited_keys(plan, Service.COMFYUI) == {}
    assert limited_keys(plan, Service.PIHOLE) == {"mem_limit": "256m", "memswap_limit": "256m", "cpus": 0.5}


def test_rendering_is_stable_and_a_changed_limit_changes_the_file():
    first = {service: render_compose(one_host(), service) for service in CATALOG}
    assert first == {service: render_compose(one_host(), service) for service in CATALOG}
    changed = render_compose(one_host(limits="pihole=768m"), Service.PIHOLE)
    assert changed != first[Service.PIHOLE]  # compose re-creates the container for a changed file
    assert "mem_limit: 768m" in changed


def test_a_share_without_the_host_read_is_refused_not_guessed():
    with pytest.raises(PlanError, match="ollama's limits .* need the host's memory and CPUs"):
        compose_document(one_host(resources=None), Service.OLLAMA)
    assert limited_keys(one_host(resources=None), Service.PIHOLE)["mem_limit"] == "512m"


# -- the plan, as people read it ------------------------------------------------------------------
def test_the_plan_shows_each_service_s_limits():
    text = one_host(limits="pihole=256m:0.5").describe()
    assert "resources     32.0 GiB of memory, 16 CPUs (limits are of RAM and CPU time, not of GPU memory)" \
        in text
    assert "limits: memory 256m (HOMELAB_LIMITS), cpus 0.5 (HOMELAB_LIMITS)" in text
    assert "limits: memory 40% of the host (12g), cpus no limit" in text
    assert "limits: memory 1g, cpus 1" in text


def test_the_plan_without_the_host_says_the_share():
    text = one_host(resources=None).describe()
    assert "limits: memory 40% of the host, cpus no limit" in text
    assert "resources " not in text


# -- preflight -----------------------------------------------------------------------------------
def observed(resources=RESOURCES, **changes) -> Observed:
    plan = one_host(resources=resources, **changes)
    return Observed(host="@fake/server", settings=plan.settings, services=list(plan.services),
                    resources=resources, limits={s: plan.limits_of(s) for s in plan.services})


def test_defaults_pass_on_a_32_gib_host():
    (row,) = check_limits(observed())
    assert row.result == PASS
    assert row.detail.startswith("the memory limits add up to 27.5 GiB of the host's 32.0 GiB, none above "
                                 "its 16 CPUs (nginx-proxy-manager memory 1g, cpus 1; pihole memory 512m")
    assert "; no memory limit" not in row.detail
    (row,) = check_limits(observed(limits="ollama=none"))
    assert row.detail.endswith("; no memory limit: ollama")


def test_a_limit_above_the_host_fails_naming_the_remedy():
    rows = check_limits(observed(limits="ollama=64g,open-webui=:32"))
    assert [row.result for row in rows] == [FAIL, FAIL]
    assert rows[0].detail == ("ollama: memory limit 64g (HOMELAB_LIMITS) is above the host's 32.0 GiB of "
                              "memory; lower it with HOMELAB_LIMITS=ollama=… (or none to lift it)")
    assert rows[1].detail.startswith("open-webui: cpus limit 32 (HOMELAB_LIMITS) is above the host's 16 CPUs")


def test_limits_adding_up_to_more_than_the_host_warn():
    (row,) = check_limits(observed(limits="ollama=20g,comfyui=12g"))
    assert row.result == WARN
    assert row.detail.startswith("the memory limits add up to 35.5 GiB, more than the host's 32.0 GiB")


def test_the_defaults_fit_a_16_gib_host_and_warn_below_12():
    (row,) = check_limits(observed(resources=HostResources(memory=16 * GIB, cpus=4)))
    assert row.result == PASS  # 1g + 512m + 2g + 6g + 6g
    (row,) = check_limits(observed(resources=HostResources(memory=11 * GIB, cpus=4)))
    assert row.result == WARN  # 3.5g + 4g + 4g


def test_unread_host_warns():
    (row,) = check_limits(dataclasses.replace(observed(), resources=None))
    assert (row.result, row.detail) == (WARN, "not checked: the host's memory and CPUs could not be read "
                                               "(/proc/meminfo, getconf)")
