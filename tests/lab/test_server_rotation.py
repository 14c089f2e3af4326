"""Rotating the admin emails and Open WebUI's secret key through the settings, on the first lab host:
each change is applied by the next deploy, the run after it changes nothing, and the host goes back to
the lab's own values afterwards (the passwords' rotation is in test_server.py)."""

from __future__ import annotations

import pytest
from labkit import assert_clean, run_pyinfra_cli, ssh, webui_auth

from lab.data import LAB_DATA  # noqa: E402

SERVER = "deploys/server.py"
WEBUI = "deploys/openwebui.py"
NPM_EMAIL = LAB_DATA["npm_admin_email"]
WEBUI_EMAIL, WEBUI_PASSWORD = LAB_DATA["open_webui_admin_email"], LAB_DATA["open_webui_admin_password"]
NEW_EMAIL = "owner@lab.home.arpa"
NPM_ADMIN_OP = "Proxy hosts | NGINX Proxy Manager admin account"
SECRET_FILE = "/opt/homelab/open-webui/webui-secret.env"


@pytest.fixture(scope="module")
def host(lab_hosts):
    host = lab_hosts[0]
    run_pyinfra_cli(SERVER, limit=host["name"], timeout=1500)
    return host


def _signin(host, email: str, password: str = WEBUI_PASSWORD) -> tuple[int, dict]:
    return webui_auth(host, "signin", {"email": email, "password": password})


def _container_key(host) -> str:
    return ssh(host, "docker exec open-webui printenv WEBUI_SECRET_KEY").stdout.strip()


def test_the_npm_admin_email_rotates_with_the_one_npm_has_given_once(host):
    name = host["name"]
    rotate = ["--data", f"npm_admin_email={NEW_EMAIL}", "--data", f"npm_admin_previous_email={NPM_EMAIL}"]
    try:
        rotated = run_pyinfra_cli(SERVER, *rotate, limit=name)
        assert NPM_ADMIN_OP in rotated.changed_operations(), rotated.changed_operations()
        assert run_pyinfra_cli(SERVER, *rotate, limit=name).changed == 0
        # the old address no longer signs in: without the previous one given, the run says what to do
        stale = run_pyinfra_cli(SERVER, limit=name, check=False)
        assert stale.returncode != 0
        assert_clean(stale)
        assert "HOMELAB_NPM_ADMIN_PREVIOUS_EMAIL" in stale.stdout + stale.stderr, stale.explain()
    finally:
        back = run_pyinfra_cli(SERVER, "--data", f"npm_admin_previous_email={NEW_EMAIL}", limit=name,
                               check=False)
        assert back.returncode == 0, back.explain()
    assert run_pyinfra_cli(SERVER, limit=name).changed == 0


def test_a_new_open_webui_admin_email_is_made_an_admin_and_the_run_after_changes_nothing(host):
    name = host["name"]
    assert _signin(host, NEW_EMAIL)[0] == 400  # no such account yet
    changed = run_pyinfra_cli(WEBUI, "--data", f"open_webui_admin_email={NEW_EMAIL}", limit=name)
    assert any(op.startswith(f"Open WebUI admin | Open WebUI admin {NEW_EMAIL}")
               for op in changed.changed_operations()), changed.changed_operations()
    status, session = _signin(host, NEW_EMAIL)
    assert (status, session.get("role")) == (200, "admin")
    assert run_pyinfra_cli(WEBUI, "--data", f"open_webui_admin_email={NEW_EMAIL}", limit=name).changed == 0
    # the previous admin keeps its account (README: a changed admin email)
    assert _signin(host, WEBUI_EMAIL)[1].get("role") == "admin"
    assert run_pyinfra_cli(WEBUI, limit=name).changed == 0


def test_open_webui_secret_key_from_the_settings_replaces_the_generated_one(host):
    name = host["name"]
    unset = ["--data", "open_webui_secret_key=null"]  # no setting: the deploy makes one on the host
    generated = run_pyinfra_cli(WEBUI, *unset, limit=name)
    assert generated.changed >= 1
    made = ssh(host, f"sed -n 's/^WEBUI_SECRET_KEY=//p' {SECRET_FILE}").stdout.strip().strip("'\"")
    assert len(made) >= 32 and _container_key(host) == made
    assert run_pyinfra_cli(WEBUI, *unset, limit=name).changed == 0
    # the setting given again: it replaces the generated key in the container
    given = run_pyinfra_cli(WEBUI, limit=name)
    assert given.changed >= 1
    assert _container_key(host) == LAB_DATA["open_webui_secret_key"]
    assert _signin(host, WEBUI_EMAIL)[0] == 200
    assert run_pyinfra_cli(WEBUI, limit=name).changed == 0
    assert run_pyinfra_cli(SERVER, limit=name).changed == 0
