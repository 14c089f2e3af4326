"""PiholeClient and the local-DNS plan against the Pi-hole double."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests

from lab.doubles.pihole_double import PiholeDouble, serve
from operations.clients import ServiceUnreachable
from operations.clients.pihole import (
    PiholeAuthError,
    PiholeClient,
    PiholeError,
    PiholeNoSessionError,
    entry_path,
)
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
        plan = plan_dns_records(client.get_hosts(), records, present, client.get_cname_records())
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
        plan = plan_dns_records(client.get_hosts(), {**RECORDS, "chat.example.com": "100.64.0.2"})
    assert plan.delete == ("100.64.0.1 chat.example.com",) and plan.add == ("100.64.0.2 chat.example.com",)
    assert plan.describe() == (
        "Pi-hole local DNS: remove chat.example.com -> 100.64.0.1; add chat.example.com -> 100.64.0.2"
    )


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
    with pytest.raises(PiholeAuthError) as caught:
        PiholeClient(url, "Wrong-pass-9999", setting_name="HOMELAB_PIHOLE_PASSWORD").login()
    assert str(caught.value) == (
        "Pi-hole refused the password in HOMELAB_PIHOLE_PASSWORD: set HOMELAB_PIHOLE_PASSWORD to the "
        "password of Pi-hole's web interface, or give Pi-hole that password (`pihole setpassword` in its "
        "container)"
    )
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


# --- entries as FTL stores them (shared/reference/pihole-recorded/) ---------------------------------


def test_entries_are_read_exactly_as_stored(pihole: tuple[PiholeDouble, str]) -> None:
    double, url = pihole
    stored = ["10.9.9.7\tComfy.Example.Test", "10.1.1.1 nas.lan Chat.Example.COM", "FD00::2 v6.example.com"]
    double.hosts.extend(stored)
    double.cname_records.append("files.example.com,nas.lan")
    with PiholeClient(url, PASSWORD) as client:
        assert client.get_hosts() == stored
        assert client.get_cname_records() == ["files.example.com,nas.lan"]


def test_delete_sends_the_exact_stored_string(pihole: tuple[PiholeDouble, str]) -> None:
    double, url = pihole
    double.hosts.extend(["10.9.9.7\tComfy.Example.Test", "10.1.1.5 a+b.example.com"])
    with PiholeClient(url, PASSWORD) as client:
        with pytest.raises(PiholeError) as caught:
            client.delete_host("10.9.9.7 comfy.example.test")  # what the old client sent: FTL's 404
        assert caught.value.status == 404
        assert str(caught.value) == (
            "Pi-hole could not delete the local DNS entry '10.9.9.7 comfy.example.test': "
            "it is not stored (any more) as exactly this string"
        )
        client.delete_host("10.9.9.7\tComfy.Example.Test")  # the tab and the capitals, %09-encoded
    assert double.hosts == ["10.1.1.5 a+b.example.com"]


def test_ftl_hint_is_kept_in_the_one_line_error(pihole: tuple[PiholeDouble, str]) -> None:
    _, url = pihole
    with PiholeClient(url, PASSWORD) as client, pytest.raises(PiholeError) as caught:
        client.add_host("notanip x.example.com")
    assert str(caught.value) == (
        "Pi-hole refused to add the local DNS entry 'notanip x.example.com' -> 400: Invalid value "
        '(dns.hosts[0]: neither a valid IPv4 nor IPv6 address ("notanip"))'
    )
    assert "\n" not in str(caught.value)


def test_pihole_without_a_password_needs_no_session() -> None:
    double = PiholeDouble("")  # FTL with no password: login says "no password set", sid null
    with serve(double) as served:
        with PiholeClient(served.url, "any-configured-value", timeout=5) as client:
            client.add_host("100.64.0.1 chat.example.com")
            assert client.get_hosts() == ["100.64.0.1 chat.example.com"]
        assert _sync(served.url, RECORDS) is True
        assert _sync(served.url, RECORDS) is False
    assert double.logins == double.logouts == 0 and not double.sessions


def test_pihole_with_a_password_refuses_calls_without_a_session(pihole: tuple[PiholeDouble, str]) -> None:
    _, url = pihole
    answer = requests.get(f"{url}/api/config/dns/hosts", timeout=5)
    assert answer.status_code == 401 and answer.json()["error"]["message"] == "Unauthorized"


def test_capitals_with_the_right_address_are_kept(pihole: tuple[PiholeDouble, str]) -> None:
    double, url = pihole
    double.hosts.extend(["100.64.0.1 Chat.Example.COM", "100.64.0.1\tHOLE.example.com"])
    assert _sync(url, RECORDS) is False
    assert double.hosts == ["100.64.0.1 Chat.Example.COM", "100.64.0.1\tHOLE.example.com"]


def test_capitals_and_a_tab_with_a_wrong_address_are_replaced(pihole: tuple[PiholeDouble, str]) -> None:
    double, url = pihole
    double.hosts.extend(["10.9.9.7 Chat.Example.COM", "10.9.9.8\thole.example.com"])
    with PiholeClient(url, PASSWORD) as client:
        plan = plan_dns_records(client.get_hosts(), RECORDS)
    assert plan.describe() == (
        "Pi-hole local DNS: remove Chat.Example.COM -> 10.9.9.7; remove '10.9.9.8\\thole.example.com'; "
        "add chat.example.com -> 100.64.0.1; add hole.example.com -> 100.64.0.1"
    )
    assert _sync(url, RECORDS) is True
    assert double.hosts == ["100.64.0.1 chat.example.com", "100.64.0.1 hole.example.com"]
    assert _sync(url, RECORDS) is False


def test_a_line_with_several_names_is_rewritten_without_ours(pihole: tuple[PiholeDouble, str]) -> None:
    double, url = pihole
    double.hosts.extend(["192.168.1.5 nas.lan", "10.9.9.7 files.lan CHAT.example.com\tmedia.lan"])
    with PiholeClient(url, PASSWORD) as client:
        plan = plan_dns_records(client.get_hosts(), {"chat.example.com": "100.64.0.1"})
    assert [(step.action, step.entry) for step in plan.steps] == [
        ("delete", "10.9.9.7 files.lan CHAT.example.com\tmedia.lan"),
        ("add", "10.9.9.7 files.lan media.lan"),
        ("add", "100.64.0.1 chat.example.com"),
    ]
    assert _sync(url, {"chat.example.com": "100.64.0.1"}) is True
    assert double.hosts == [
        "192.168.1.5 nas.lan", "10.9.9.7 files.lan media.lan", "100.64.0.1 chat.example.com"
    ]
    assert _sync(url, {"chat.example.com": "100.64.0.1"}) is False
    assert _sync(url, {"chat.example.com": "100.64.0.1"}, present=False) is True
    assert double.hosts == ["192.168.1.5 nas.lan", "10.9.9.7 files.lan media.lan"]


def test_our_name_beside_others_is_split_off_even_with_the_right_address(
    pihole: tuple[PiholeDouble, str],
) -> None:
    double, url = pihole
    double.hosts.extend(["100.64.0.1 nas.lan chat.example.com", "100.64.0.1 nas.lan"])
    assert _sync(url, {"chat.example.com": "100.64.0.1"}) is True
    # the line without our name is already stored: it is not added twice (FTL would answer 400)
    assert double.hosts == ["100.64.0.1 nas.lan", "100.64.0.1 chat.example.com"]


def test_several_of_our_names_on_one_right_line_are_kept(pihole: tuple[PiholeDouble, str]) -> None:
    double, url = pihole
    double.hosts.append("100.64.0.1 hole.example.com CHAT.example.com")
    assert _sync(url, RECORDS) is False
    moved = {**RECORDS, "hole.example.com": "100.64.0.2"}
    assert _sync(url, moved) is True
    assert double.hosts == ["100.64.0.1 chat.example.com", "100.64.0.2 hole.example.com"]


def test_ipv6_addresses_compare_as_addresses() -> None:
    plan = plan_dns_records(["FD00::0002 v6.example.com"], {"v6.example.com": "fd00::2"})
    assert not plan.changes


def test_a_cname_for_our_name_is_a_conflict(pihole: tuple[PiholeDouble, str]) -> None:
    double, url = pihole
    double.cname_records.extend(["files.example.com,nas.lan", "Chat.Example.com,elsewhere.example.net,300"])
    with PiholeClient(url, PASSWORD) as client:
        plan = plan_dns_records(client.get_hosts(), RECORDS, cname_records=client.get_cname_records())
    assert plan.conflicts == (
        "Pi-hole's CNAME record 'Chat.Example.com,elsewhere.example.net,300' answers for chat.example.com, "
        "so the local DNS record chat.example.com -> 100.64.0.1 would never be used: delete that CNAME "
        "record in Pi-hole (Local DNS > CNAME records) and run again",
    )
    removing = plan_dns_records([], RECORDS, present=False, cname_records=double.cname_records)
    assert removing.conflicts == ()


def test_entries_are_url_encoded_whole() -> None:
    assert entry_path("/api/config/dns/hosts", "10.1.1.3\tTab.Example.Test") == (
        "/api/config/dns/hosts/10.1.1.3%09Tab.Example.Test"
    )
    assert entry_path("/x", "fd00::1 a+b/c") == "/x/fd00%3A%3A1%20a%2Bb%2Fc"


class Answering(requests.Session):
    """A session whose requests all get ``status`` with ``body`` (what stands in front of a Pi-hole that
    is not up: a proxy's error page, a web server without FTL behind it)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__()
        self.status, self.body, self.asked = status, body, []

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        self.asked.append((method, url))
        answer = requests.Response()
        answer.status_code, answer._content = self.status, self.body
        return answer


@pytest.mark.parametrize("password", [PASSWORD, ""])
def test_wait_ready_asks_without_a_session(password: str) -> None:
    """FTL answers ``GET /api/auth`` without a session (401 "no SID provided", or 200 without a
    password): the API is up, and no login took a seat."""
    double = PiholeDouble(password)
    with serve(double) as served:
        PiholeClient(served.url, password).wait_ready(timeout=2, waiting=pytest.fail)
    assert double.logins == 0 and not double.sessions


def test_wait_ready_times_out_saying_what_it_last_found() -> None:
    with pytest.raises(PiholeError) as caught:
        PiholeClient("http://127.0.0.1:9", PASSWORD, timeout=0.2).wait_ready(timeout=0.3, interval=0.1)
    assert str(caught.value) == "Pi-hole at http://127.0.0.1:9 did not answer within 0s (last: no answer yet)"
    assert isinstance(caught.value, ServiceUnreachable)


def test_wait_ready_is_not_fooled_by_an_answer_that_is_not_ftls() -> None:
    seen: list[str] = []
    session = Answering(502, b"<html>502 Bad Gateway</html>")
    client = PiholeClient("http://127.0.0.1:9", PASSWORD, session=session)
    with pytest.raises(PiholeError, match=r"did not answer within 0s \(last: it answers 502 \(not Pi-hole's"):
        client.wait_ready(timeout=0.3, interval=0.1, waiting=seen.append)
    assert seen and set(seen) == {"it answers 502 (not Pi-hole's API)"}
    assert set(session.asked) == {("GET", "http://127.0.0.1:9/api/auth")}
    assert PASSWORD not in str(session.asked)
