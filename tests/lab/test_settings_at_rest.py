"""A deploy that reads its secrets from an age-encrypted settings file, decrypted in memory only.

The lab inventory with LAB_SECRETS=env-file leaves the lab's secrets out of the host data, so the run
has them only from `$HOMELAB_ENV_FILE` (here a `.env.age` in a temporary folder, made with the
project's own `encrypt` command for an identity made by its `keygen`): tier 1 passes, the Pi-hole
deploy changes nothing (the secrets are the ones the host already runs with), and no file on the
controller holds a secret in plain text afterwards. With another identity, the run stops before any
host is contacted, in one line.
"""

from __future__ import annotations

import os
import subprocess
import sys

from labkit import ROOT, assert_clean, run_pyinfra_cli, ssh

from lab.data import LAB_DATA  # noqa: E402

SECRETS = {key: LAB_DATA[key] for key in ("pihole_password", "npm_admin_password",
                                          "open_webui_admin_password", "open_webui_secret_key")}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploys.library.settings", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_deploy_reads_its_secrets_from_an_encrypted_settings_file(lab_hosts, tmp_path):
    host = lab_hosts[0]
    folder = tmp_path / "owner"
    folder.mkdir()
    base = {key: value for key, value in os.environ.items() if not key.startswith("HOMELAB_")}
    identity = tmp_path / "keys" / "age-identity.txt"
    made = _cli("keygen", "-o", str(identity), env=base)
    assert made.returncode == 0, made.stderr
    recipient = next(word for word in made.stdout.split() if word.startswith("age1"))
    plain = folder / ".env"
    plain.write_text("".join(f"HOMELAB_{key.upper()}={value}\n" for key, value in SECRETS.items()))
    done = _cli("encrypt", "--env-file", str(plain), "--recipient", recipient, env=base)
    assert done.returncode == 0, done.stderr
    plain.unlink()  # as the command tells the owner to: only .env.age stays
    assert (folder / ".env.age").exists()

    env = {"LAB_SECRETS": "env-file", "HOMELAB_ENV_FILE": str(plain), "HOMELAB_AGE_IDENTITY": str(identity)}
    run_pyinfra_cli("deploys/validate.py", limit=host["name"], env=env)
    run_pyinfra_cli("deploys/pihole.py", limit=host["name"], env=env)
    assert run_pyinfra_cli("deploys/pihole.py", limit=host["name"], env=env).changed == 0
    # the password the deploy wrote for Pi-hole is the one from the encrypted file
    written = ssh(host, "cat /opt/homelab/pihole/.env").stdout
    assert SECRETS["pihole_password"] in written

    # nothing decrypted was left on the controller: not beside the encrypted file, not in the checkout
    # (a decrypted line as the plain file held it: `HOMELAB_PIHOLE_PASSWORD=…`)
    line = f"HOMELAB_PIHOLE_PASSWORD={SECRETS['pihole_password']}"
    leaked = subprocess.run(["grep", "-rlF", "--exclude-dir=.git", "--exclude-dir=.venv", line, str(tmp_path),
                             str(ROOT)], capture_output=True, text=True)
    assert leaked.stdout == "", leaked.stdout

    # without the secrets in the host data, a stranger's identity stops the run before any host
    stranger = tmp_path / "stranger.txt"
    assert _cli("keygen", "-o", str(stranger), env=base).returncode == 0
    refused = run_pyinfra_cli("deploys/pihole.py", limit=host["name"], check=False,
                              env={**env, "HOMELAB_AGE_IDENTITY": str(stranger)})
    assert refused.returncode != 0
    assert_clean(refused)
    output = refused.stdout + refused.stderr
    assert "not contacted: invalid settings" in output
    assert SECRETS["pihole_password"] not in output
