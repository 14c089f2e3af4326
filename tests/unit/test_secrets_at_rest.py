"""Settings encrypted at rest (`.env.age`): real age (pyrage), real files, nothing decrypted on disk."""

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pyrage
import pytest

from deploys.library import secrets_at_rest
from deploys.library.settings import HomelabSettings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]

ENV_TEXT = """\
# the owner's settings
HOMELAB_DOMAIN=home.example.com
export HOMELAB_TAILSCALE_ALLOWED_IPS="100.64.0.0/10, fd7a:115c:a1e0::/48"
HOMELAB_PIHOLE_PASSWORD='pihole-secret-value'
HOMELAB_NPM_ADMIN_EMAIL=admin@home.example.com
HOMELAB_NPM_ADMIN_PASSWORD="npm-secret-value"   # a comment after a value
HOMELAB_OPEN_WEBUI_ADMIN_EMAIL=admin@home.example.com
HOMELAB_OPEN_WEBUI_ADMIN_PASSWORD=webui-secret-value
HOMELAB_MIN_FREE_DISK_GB=75
"""
SECRETS = ("pihole-secret-value", "npm-secret-value", "webui-secret-value")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("HOMELAB_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # the default identity path lies beneath it
    secrets_at_rest.forget()
    yield
    secrets_at_rest.forget()


@pytest.fixture(scope="module")
def by_passphrase() -> bytes:
    """ENV_TEXT encrypted with the passphrase "correct horse" (made once: scrypt takes a second)."""
    return pyrage.passphrase.encrypt(ENV_TEXT.encode(), "correct horse", armored=True)


@pytest.fixture
def identity(tmp_path, monkeypatch):
    """An identity file (0600) named by HOMELAB_AGE_IDENTITY; returns the identity."""
    made = pyrage.x25519.Identity.generate()
    path = tmp_path / "keys" / "age-identity.txt"
    path.parent.mkdir()
    path.write_text(f"# created: now\n# public key: {made.to_public()}\n{made}\n")
    path.chmod(0o600)
    monkeypatch.setenv("HOMELAB_AGE_IDENTITY", str(path))
    return made


def encrypted_to(folder: Path, *recipients, text: str = ENV_TEXT) -> Path:
    path = folder / ".env.age"
    path.write_bytes(pyrage.encrypt(text.encode(), list(recipients), armored=True))
    return path


def load(folder: Path, **overrides):
    return load_settings(overrides, env_file=folder / ".env")


def one_problem(folder: Path) -> str:
    with pytest.raises(SettingsError) as info:
        load(folder)
    text = str(info.value) + repr(info.value)
    for secret in SECRETS:
        assert secret not in text
    assert len(info.value.problems) == 1 and "\n" not in info.value.problems[0], info.value.problems
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return info.value.problems[0]


def cli(*args: str, monkeypatch, capsys) -> tuple[int, str, str]:
    """``python -m deploys.library.settings ARGS`` in this process (one subprocess test proves `-m`)."""
    from deploys.library import settings

    code = settings.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def settings_py(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deploys.library.settings", *args],
        cwd=REPO, env={"PATH": "/usr/bin:/bin", **env}, input=stdin, capture_output=True, text=True,
    )


# -- reading -----------------------------------------------------------------------------------------

def test_identity_round_trip_reads_what_env_would(tmp_path, identity):
    encrypted_to(tmp_path, identity.to_public())
    settings = load(tmp_path)
    assert settings.domain == "home.example.com"
    assert settings.min_free_disk_gb == 75
    assert settings.npm_admin_password.get_secret_value() == "npm-secret-value"
    # the same text as a plain .env gives the very same settings (same dotenv parsing)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ".env").write_text(ENV_TEXT)
    assert load(plain) == settings
    for secret in SECRETS:
        assert secret not in repr(settings) and secret not in str(settings)


def test_homelab_settings_with_an_env_file_argument_reads_its_age(tmp_path, identity):
    """Code that builds the model itself (`_env_file=`) reads `.env.age` the same way."""
    encrypted_to(tmp_path, identity.to_public())
    assert HomelabSettings(_env_file=tmp_path / ".env").domain == "home.example.com"


def test_passphrase_round_trip_from_the_environment(tmp_path, monkeypatch, by_passphrase):
    (tmp_path / ".env.age").write_bytes(by_passphrase)
    monkeypatch.setenv("HOMELAB_AGE_PASSPHRASE", "correct horse")
    assert load(tmp_path).pihole_password.get_secret_value() == "pihole-secret-value"
    secrets_at_rest.forget()
    monkeypatch.setenv("HOMELAB_AGE_PASSPHRASE", "wrong horse")
    problem = one_problem(tmp_path)
    assert problem.startswith(f"{tmp_path / '.env.age'}: wrong passphrase")
    assert "HOMELAB_AGE_PASSPHRASE" in problem
    assert "horse" not in problem


def test_passphrase_asked_once_on_a_terminal_and_refused_without_one(tmp_path, monkeypatch, by_passphrase):
    (tmp_path / ".env.age").write_bytes(by_passphrase)
    asked = []
    monkeypatch.setattr(
        secrets_at_rest.getpass, "getpass", lambda prompt: asked.append(prompt) or "correct horse"
    )
    monkeypatch.setattr(sys, "stdin", type("Tty", (), {"isatty": lambda self: True})())
    for _ in range(3):  # one run validates every host's settings: one prompt
        assert load(tmp_path).domain == "home.example.com"
    assert asked == [f"Passphrase for {tmp_path / '.env.age'}: "]
    secrets_at_rest.forget()
    monkeypatch.setattr(sys, "stdin", type("Pipe", (), {"isatty": lambda self: False})())
    problem = one_problem(tmp_path)
    assert "encrypted with a passphrase, and none was given; set HOMELAB_AGE_PASSPHRASE" in problem


def test_wrong_identity_is_one_line_naming_the_file_and_the_remedy(tmp_path, identity):
    stranger = pyrage.x25519.Identity.generate()
    encrypted_to(tmp_path, stranger.to_public())
    problem = one_problem(tmp_path)
    assert problem.startswith(f"{tmp_path / '.env.age'}: the identity {os.environ['HOMELAB_AGE_IDENTITY']}")
    assert "is not one of its recipients" in problem
    assert f"--recipient {identity.to_public()}" in problem  # the public half: what to encrypt to
    assert str(identity) not in problem and "AGE-SECRET-KEY" not in problem


def test_both_env_and_env_age_refused_naming_both(tmp_path, identity):
    encrypted_to(tmp_path, identity.to_public())
    (tmp_path / ".env").write_text(ENV_TEXT)
    problem = one_problem(tmp_path)
    assert f"{tmp_path / '.env'} and {tmp_path / '.env.age'} both exist" in problem
    assert "delete or move" in problem


def test_environment_still_wins_over_env_age(tmp_path, identity, monkeypatch):
    encrypted_to(tmp_path, identity.to_public())
    monkeypatch.setenv("HOMELAB_DOMAIN", "from-the-environment.example.org")
    settings = load(tmp_path)
    assert settings.domain == "from-the-environment.example.org"
    assert settings.min_free_disk_gb == 75  # the rest still from .env.age
    assert load(tmp_path, domain="from-data.example.org").domain == "from-data.example.org"


def test_missing_identity_file_says_how_to_make_one(tmp_path, monkeypatch):
    encrypted_to(tmp_path, pyrage.x25519.Identity.generate().to_public())
    problem = one_problem(tmp_path)  # no HOMELAB_AGE_IDENTITY, no default identity
    default = Path(os.environ["HOME"]) / ".config/homelab/age-identity.txt"
    assert f"no identity file at {default}" in problem and "age-keygen -o" in problem
    monkeypatch.setenv("HOMELAB_AGE_IDENTITY", str(tmp_path / "nowhere.txt"))
    assert f"HOMELAB_AGE_IDENTITY={tmp_path / 'nowhere.txt'}: no such file" in one_problem(tmp_path)


def test_default_identity_is_used(tmp_path):
    made = pyrage.x25519.Identity.generate()
    default = Path(os.environ["HOME"]) / ".config/homelab/age-identity.txt"
    default.parent.mkdir(parents=True)
    default.write_text(f"{made}\n")
    default.chmod(0o600)
    encrypted_to(tmp_path, made.to_public())
    assert load(tmp_path).domain == "home.example.com"


def test_identity_readable_by_others_is_refused(tmp_path, identity):
    encrypted_to(tmp_path, identity.to_public())
    path = Path(os.environ["HOMELAB_AGE_IDENTITY"])
    path.chmod(0o644)
    problem = one_problem(tmp_path)
    assert problem == (
        f"{path}: the age identity can be read by others (mode 0644), so it is not used; "
        f"make it private: chmod 600 {path}"
    )


def test_identity_file_with_a_bad_line_never_shows_it(tmp_path, identity):
    encrypted_to(tmp_path, identity.to_public())
    path = Path(os.environ["HOMELAB_AGE_IDENTITY"])
    path.write_text("AGE-SECRET-KEY-1NOTAKEYBUTSECRETLOOKING\n")
    problem = one_problem(tmp_path)
    assert "line 1 is no age identity" in problem and "NOTAKEY" not in problem


@pytest.mark.parametrize(
    "content",
    [
        b"HOMELAB_DOMAIN=plain.example.org\n",
        b"-----BEGIN AGE ENCRYPTED FILE-----\n!!!\n-----END AGE ENCRYPTED FILE-----\n",
    ],
    ids=["plain-text", "bad-armor"],
)
def test_a_damaged_file_is_one_line(tmp_path, identity, content):
    (tmp_path / ".env.age").write_bytes(content)
    problem = one_problem(tmp_path)
    assert problem.startswith(f"{tmp_path / '.env.age'}: not an age-encrypted file")
    assert "plain.example.org" not in problem


def test_a_truncated_file_is_one_line(tmp_path, identity):
    good = pyrage.encrypt(ENV_TEXT.encode(), [identity.to_public()])
    (tmp_path / ".env.age").write_bytes(good[:-40])
    problem = one_problem(tmp_path)
    assert problem.startswith(f"{tmp_path / '.env.age'}: cannot be decrypted (")


def test_ssh_key_identity_round_trip(tmp_path, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = tmp_path / "id_ed25519"
    private.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ))
    private.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    recipients = secrets_at_rest.parse_recipients([public.decode() + " me@laptop"], "test")
    encrypted_to(tmp_path, *recipients)
    monkeypatch.setenv("HOMELAB_AGE_IDENTITY", str(private))
    assert load(tmp_path).domain == "home.example.com"


def test_nothing_decrypted_is_written_anywhere(tmp_path, identity, monkeypatch):
    own_tmp = tmp_path / "tmp"
    own_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(own_tmp))
    monkeypatch.setenv("TMPDIR", str(own_tmp))
    encrypted_to(tmp_path, identity.to_public())
    before = sorted(tmp_path.rglob("*"))
    load(tmp_path)
    assert sorted(tmp_path.rglob("*")) == before
    assert list(own_tmp.iterdir()) == []
    for path in before:
        if path.is_file():
            assert b"npm-secret-value" not in path.read_bytes(), path


def test_decrypted_once_per_file_version(tmp_path, identity, monkeypatch):
    encrypted_to(tmp_path, identity.to_public())
    calls = []
    real = secrets_at_rest.pyrage.decrypt
    monkeypatch.setattr(secrets_at_rest.pyrage, "decrypt", lambda *a: calls.append(1) or real(*a))
    for _ in range(3):
        load(tmp_path)
    assert len(calls) == 1
    encrypted_to(tmp_path, identity.to_public(), text=ENV_TEXT.replace("=75", "=80"))
    assert load(tmp_path).min_free_disk_gb == 80  # a changed file is read again


def test_unknown_variables_in_env_age_are_named_there(tmp_path, identity, monkeypatch):
    encrypted_to(tmp_path, identity.to_public(), text=ENV_TEXT + "HOMELAB_DOMIAN=typo.example.org\n")
    monkeypatch.setenv("HOMELAB_AGE_PASSPHRASE", "not-used-here")  # ours, not an unknown setting
    problem = one_problem(tmp_path)
    assert problem == (
        f"HOMELAB_DOMIAN (from {tmp_path / '.env.age'}): is not a setting; did you mean HOMELAB_DOMAIN?"
    )


def test_plain_env_unchanged(tmp_path):
    (tmp_path / ".env").write_text(ENV_TEXT)
    assert load(tmp_path).domain == "home.example.com"
    assert secrets_at_rest.decrypted_env(tmp_path / ".env") is None


# -- writing: python -m deploys.library.settings encrypt / keygen ----------------------------------------

def test_encrypt_command_to_recipients_then_load(tmp_path, identity):
    (tmp_path / ".env").write_text(ENV_TEXT)
    other = pyrage.x25519.Identity.generate()
    recipients_file = tmp_path / "recipients.txt"
    recipients_file.write_text(f"# the other owner\n{other.to_public()}\n")
    done = settings_py(
        "encrypt", "--env-file", str(tmp_path / ".env"), "--recipient", str(identity.to_public()),
        "--recipients-file", str(recipients_file), env={},
    )
    assert done.returncode == 0, done.stderr
    encrypted = tmp_path / ".env.age"
    assert f"wrote {encrypted} (mode 0600), encrypted to 2 recipients" in done.stdout
    assert f"delete or move {tmp_path / '.env'}" in done.stdout
    assert stat.S_IMODE(encrypted.stat().st_mode) == 0o600
    assert encrypted.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert (tmp_path / ".env").read_text() == ENV_TEXT  # the plain file is the owner's to remove
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".env", ".env.age", "home", "keys", "recipients.txt"]
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr
    (tmp_path / ".env").unlink()
    assert load(tmp_path).npm_admin_password.get_secret_value() == "npm-secret-value"
    assert pyrage.decrypt(encrypted.read_bytes(), [other]) == ENV_TEXT.encode()  # the other owner too


def test_encrypt_refuses_to_overwrite_without_force(tmp_path, identity, monkeypatch, capsys):
    (tmp_path / ".env").write_text(ENV_TEXT)
    (tmp_path / ".env.age").write_text("an older one")
    args = ("encrypt", "--env-file", str(tmp_path / ".env"), "--recipient", str(identity.to_public()))
    code, _, err = cli(*args, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2
    assert err == (
        f"error: {tmp_path / '.env.age'} exists already; nothing was written (--force replaces it)\n"
    )
    assert (tmp_path / ".env.age").read_text() == "an older one"
    code, _, err = cli(*args, "--force", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    # no partial file left
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", ".env.age", "home", "keys"]
    assert stat.S_IMODE((tmp_path / ".env.age").stat().st_mode) == 0o600
    assert pyrage.decrypt((tmp_path / ".env.age").read_bytes(), [identity]) == ENV_TEXT.encode()


def test_encrypt_with_a_passphrase_from_the_environment(tmp_path, monkeypatch, capsys):
    (tmp_path / ".env").write_text(ENV_TEXT)
    monkeypatch.setenv("HOMELAB_AGE_PASSPHRASE", "long enough words")
    code, out, err = cli("encrypt", "--env-file", str(tmp_path / ".env"), "--passphrase",
                         monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "encrypted with a passphrase" in out and "long enough" not in out + err
    assert stat.S_IMODE((tmp_path / ".env.age").stat().st_mode) == 0o600
    written = (tmp_path / ".env.age").read_bytes()
    assert pyrage.passphrase.decrypt(written, "long enough words") == ENV_TEXT.encode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "say whom to encrypt to: --recipient"),
        (("--recipient", "age1notarecipient"), "'age1notarecipient' is no age recipient"),
        (("--passphrase",), "--passphrase: no passphrase given; set HOMELAB_AGE_PASSPHRASE"),
        (("--passphrase", "--recipient", "age1x"), "--passphrase or recipients, not both"),
    ],
)
def test_encrypt_refusals_write_nothing(tmp_path, args, message, monkeypatch, capsys):
    (tmp_path / ".env").write_text(ENV_TEXT)
    monkeypatch.setattr(sys, "stdin", type("Pipe", (), {"isatty": lambda self: False})())
    env_file = str(tmp_path / ".env")
    code, _, err = cli("encrypt", "--env-file", env_file, *args, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", "home"]


def test_keygen_makes_a_private_identity_outside_the_repository(tmp_path, monkeypatch, capsys):
    code, out, err = cli("keygen", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    path = tmp_path / "home/.config/homelab/age-identity.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    made = secrets_at_rest.parse_identities(path)[0]
    assert f"Its recipient (public, for --recipient): {made.to_public()}" in out
    assert str(made) not in out
    code, _, err = cli("keygen", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "an identity is never replaced" in err
    code, _, err = cli("keygen", "-o", str(REPO / "age-identity.txt"), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "inside the repository" in err
    assert not (REPO / "age-identity.txt").exists()


def test_unknown_command_refused_and_help(monkeypatch, capsys):
    code, _, err = cli("nonsense", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "unknown command 'nonsense'" in err
    with pytest.raises(SystemExit) as done:
        cli("--help", monkeypatch=monkeypatch, capsys=capsys)
    out = capsys.readouterr().out
    assert done.value.code == 0 and "encrypt" in out and "keygen" in out and "check" in out


def test_gitignore_keeps_env_out_and_env_age_in():
    def ignored(name: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO).returncode == 0

    assert ignored(".env")
    assert not ignored(".env.age")
    assert ignored("age-identity.txt")


# -- HOMELAB_ENV_FILE: another settings file than the repository's .env ------------------------------
def test_homelab_env_file_names_an_encrypted_settings_file_elsewhere(tmp_path, identity, monkeypatch):
    folder = tmp_path / "owner"
    folder.mkdir()
    encrypted_to(folder, identity.to_public())
    monkeypatch.setenv("HOMELAB_ENV_FILE", str(folder / ".env"))  # only .env.age exists there
    settings = load_settings({})
    assert settings.domain == "home.example.com" and settings.min_free_disk_gb == 75
    assert settings.npm_admin_password.get_secret_value() == "npm-secret-value"


def test_homelab_env_file_names_a_plain_settings_file(tmp_path, monkeypatch):
    path = tmp_path / "site.env"
    path.write_text(ENV_TEXT)
    monkeypatch.setenv("HOMELAB_ENV_FILE", str(path))
    assert load_settings({}).min_free_disk_gb == 75


def test_homelab_env_file_naming_nothing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HOMELAB_ENV_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(SettingsError) as info:
        load_settings({})
    assert info.value.problems == [
        f"HOMELAB_ENV_FILE={tmp_path / 'missing.env'}: neither that file nor missing.env.age beside it exists"
    ]


def test_homelab_env_file_naming_the_encrypted_file_itself_says_to_name_the_plain_one(tmp_path, monkeypatch):
    monkeypatch.setenv("HOMELAB_ENV_FILE", str(tmp_path / "site.env.age"))
    with pytest.raises(SettingsError) as info:
        load_settings({})
    assert info.value.problems == [
        f"HOMELAB_ENV_FILE={tmp_path / 'site.env.age'}: name the plain file's path "
        f"({tmp_path / 'site.env'}); its .age beside it is read when only that exists"
    ]
