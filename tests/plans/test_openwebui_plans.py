"""deploys/openwebui.py planned against a `@fake` Debian host whose Open WebUI is not running yet: the
admin account is made inside the container from a 0600 file removed right after, the password only
ever in that file's upload, and the admin then checked and sign-up closed when the run gets there."""

from __future__ import annotations

from harness import DEBIAN_12, SETTINGS, plan

OP = f"Open WebUI admin | Open WebUI admin {SETTINGS['open_webui_admin_email']}; sign-up closed"
PAYLOAD = "/opt/homelab/open-webui/.admin-account.json"


def test_a_first_deploy_makes_the_admin_in_the_container_from_a_private_file():
    ops = plan("deploys/openwebui.py", {"ls -pdL *-release": DEBIAN_12, "uname -m": "x86_64"})
    commands = ops[OP]
    assert f"umask 077 && install -m 600 /dev/null {PAYLOAD}" in commands
    (upload,) = [c for c in commands if c.startswith(f"upload {PAYLOAD}:")]
    assert '"email": "admin@home.example.com"' in upload and '"name": "Admin"' in upload
    (run,) = [c for c in commands if c.startswith("docker exec -i open-webui python3 -c ")]
    assert run.endswith(f"< {PAYLOAD}; status=$?; rm -f {PAYLOAD}; exit $status")
    assert commands[-1] == "FunctionCommand"  # the admin signs in, sign-up closed: checked when it runs
    for name, found in ops.items():
        for command in found:
            if SETTINGS["open_webui_admin_password"] in command:
                assert (name, command) == (OP, upload)


def test_the_compose_file_closes_signup_from_the_first_start():
    ops = plan("deploys/openwebui.py", {"ls -pdL *-release": DEBIAN_12, "uname -m": "x86_64"})
    compose = "\n".join(c for name, found in ops.items() if "compose project" in name for c in found)
    assert "      ENABLE_SIGNUP: 'false'" in compose.splitlines(), compose[-2000:]
