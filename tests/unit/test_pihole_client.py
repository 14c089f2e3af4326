"""PiholeClient and the local-DNS plan against the Pi-hole double."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests

from lab.doubles.pihole_double import PiholeDouble, serve
from operations.clients.pihole import PiholeAuthError, PiholeClient, PiholeNoSessionError
from operations.pihole import apply_dns_plan, plan_dns_records

PASSWORD = "Pihole-secret-77"  # noqa: S105 - test value
RECORDS = {"chat.example.com": "100.64.0.1", "hole.example.com": "100.64.0.1"}


@pytest.fixture
def pihole() -> Iterator[tuple[PiholeDouble, str]]:
    double = PiholeDouble(PASSWORD, max_sessions=2)
    with serve(double) as served:
        yield double, served.url


def _sync(url: str, records: dict[str, str], present: bool = True) -> bool:
    with PiholeClient(url, PASSWORD, timeout=5) as client:
        plan = plan_dns_records(client.get_local_dns(), records, present)
        apply_dns_plan(client, plan)
    return plan.changes


def test_add_rerun_noop_then_remove(pihole: tuple[PiholeDouble, str]) -> None:
    double, url = pihole
    double.hosts.append("192.168.1.5 nas.lan")
    assert _sync(url, RECORDS) is True
    assert set(double.hosts) == {
        "192.168.1.5 nas.lan",
        "100.64.0.1 chat.example.com",
        "100.64.0.1 hole.example.com",
    }
    assert _sync(url, RECORDS) is False
    assert _sync(url, RECORDS, present=False) is True
    assert double.hosts == ["192.168.1.5 nas.lan"]
    assert double.logins == double.logouts == 3 and not double.sessions


def test_moved_ip_replaces_the_old_record(pihole: tuple[PiholeDouble, str]) -> None:
    double, url = pihole
    _sync(url, RECORDS)
    with PiholeClient(url, PASSWORD) as client:
        plan = plan_dns_records(client.get_local_dns(), {**RECORDS, "chat.example.com": "100.64.0.2"})
    assert plan.remove == (("100.64.0.1", "chat.example.com"),) and plan.add == (
        ("100.64.0.2", "chat.example.com"),
    )
    assert "add chat.example.com -> 100.64.0.2" in plan.describe()


def test_case_insensitive_hostnames(pihole: tuple[PiholeDouble, str]) -> None:
    _, url = pihole
    _sync(url, RECORDS)
    assert _sync(url, {"Chat.Example.COM": "100.64.0.1"}) is False


def test_logout_happens_even_on_error(pihole: tuple[PiholeDouble, str]) -> None:
    double, url = pihole
    with pytest.raises(RuntimeError), PiholeClient(url, PASSWORD):
        raise RuntimeError("boom")
    assert double.logouts == 1 and not double.sessions


def test_wrong_password_is_clear_and_secret_free(pihole: tuple[PiholeDouble, str], caplog) -> None:
    _, url = pihole
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PiholeAuthError, match="refused the configured password") as caught:
        PiholeClient(url, "Wrong-pass-9999").login()
    assert "Wrong-pass-9999" not in str(caught.value) + repr(caught.value) + caplog.text


def test_no_free_session_is_a_clear_429(pihole: tuple[PiholeDouble, str]) -> None:
    _, url = pihole
    for _ in range(2):  # two sessions left open by someone else
        requests.post(f"{url}/api/auth", json={"password": PASSWORD}, timeout=5)
    with pytest.raises(PiholeNoSessionError, match="429"):
        PiholeClient(url, PASSWORD).login()


def test_bad_ip_fails_before_any_call() -> None:
    with pytest.raises(ValueError, match="expected an IP address"):
        plan_dns_records([], {"chat.example.com": "not-an-ip"})


def test_web_root_answers_for_health(pihole: tuple[PiholeDouble, str]) -> None:
    _, url = pihole
    assert requests.get(f"{url}/admin/", timeout=5).status_code == 200
