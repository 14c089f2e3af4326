"""Settings encrypted at rest: ``.env.age``, an age-encrypted ``.env``, decrypted in memory only.

An owner can commit their settings (as the original committed its Ansible Vault file) once they are
encrypted with age (https://age-encryption.org, through the PyPI package ``pyrage``). The rules:

- ``<env file>.age`` beside the env file the settings read (the repository's ``.env`` →
  ``.env.age``) is read exactly as that env file would be: the same dotenv parsing, and the
  environment (``HOMELAB_*``) and pyinfra data still win over it.
- If both ``.env`` and ``.env.age`` exist, the settings refuse to load, naming both: which one
  counts would be a silent surprise. After ``python -m deploys.library.settings encrypt``, delete or
  move the plain ``.env``.
- The decrypted text lives only in this process's memory (never a file, not even a temporary one),
  decrypted once per process (a run validates every host's settings: one prompt, not one per host).
- A file encrypted to recipients (``X25519`` from ``age-keygen``, or an SSH key) is opened with the
  identity file named by ``HOMELAB_AGE_IDENTITY``, else ``~/.config/homelab/age-identity.txt``. The
  identity file must be private to its owner (like ``ssh`` with a private key, a file that others may
  read is refused).
- A passphrase-encrypted file (its age header's stanza is ``scrypt``) takes the passphrase from
  ``HOMELAB_AGE_PASSPHRASE``, else asks for it when stdin is a terminal, else stops saying how to give it.

Every problem is one line naming the file and the remedy (:class:`EncryptedEnvError`); neither a
secret nor the decrypted text is ever part of it. ``settings.py`` turns it into a ``SettingsError``,
so it is shown, before any host is contacted, where every settings problem is.

Commands (``python -m deploys.library.settings …``): ``encrypt`` writes ``.env.age`` from ``.env``;
``keygen`` makes an identity file outside the repository. There is deliberately no ``decrypt``: the
settings are read where they are needed, and ``python -m deploys.library.settings`` checks them.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime
import getpass
import io
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyrage
from dotenv import dotenv_values
from pydantic_settings import DotEnvSettingsSource

try:  # where a .env file's variables are normalised (case, empty values) before use
    from pydantic_settings.sources.utils import parse_env_vars
except ImportError:  # pydantic-settings before the sources package (2.4 …)
    from pydantic_settings.sources import parse_env_vars  # type: ignore[no-redef,attr-defined]

SUFFIX = ".age"
IDENTITY_VARIABLE = "HOMELAB_AGE_IDENTITY"
PASSPHRASE_VARIABLE = "HOMELAB_AGE_PASSPHRASE"  # noqa: S105 (a variable's name)
# environment variables of this module: they start with HOMELAB_ but are no settings
VARIABLES = frozenset({IDENTITY_VARIABLE, PASSPHRASE_VARIABLE})
REPO_ROOT = Path(__file__).resolve().parents[2]
# names another settings file (and its encrypted sibling, <file>.age) than the repository's .env
ENV_FILE_VARIABLE = "HOMELAB_ENV_FILE"

_MAGIC = b"age-encryption.org/v1\n"
_ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
_ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
_RECIPIENT_STANZAS = frozenset({"X25519", "ssh-ed25519", "ssh-rsa"})


class EncryptedEnvError(ValueError):
    """One line naming the file and the remedy; never a secret nor the decrypted text."""


def default_identity() -> Path:
    return Path.home() / ".config" / "homelab" / "age-identity.txt"


def encrypted_path(env_file: str | os.PathLike[str]) -> Path:
    """The encrypted stand-in of an env file: the same path with ``.age`` added."""
    path = Path(env_file).expanduser()
    return path.with_name(path.name + SUFFIX)


# -- reading ---------------------------------------------------------------------------------------

# decrypted text by (file, inode, size, mtime): a run reads the settings once per host
_decrypted: dict[tuple[str, int, int, int], str] = {}


def forget() -> None:
    """Drop the decrypted texts this process holds (tests; a long-lived process after a change)."""
    _decrypted.clear()


def decrypted_env(env_file: str | os.PathLike[str]) -> str | None:
    """The decrypted text of ``<env_file>.age`` (``None`` when there is none).

    Raises :class:`EncryptedEnvError` when both ``env_file`` and its ``.age`` exist, or when the
    ``.age`` cannot be decrypted (one line, the file and the remedy).
    """
    plain = Path(env_file).expanduser()
    encrypted = encrypted_path(plain)
    if not encrypted.exists():
        return None
    if plain.exists():
        raise EncryptedEnvError(
            f"{plain} and {encrypted} both exist: the settings come from one of them, never both; "
            f"keep {encrypted} and delete or move {plain} (or move {encrypted} away to use {plain})"
        )
    try:
        info = encrypted.stat()
        data = encrypted.read_bytes()
    except OSError as error:
        raise EncryptedEnvError(f"{encrypted}: cannot be read ({error.strerror})") from None
    key = (str(encrypted.resolve()), info.st_ino, info.st_size, info.st_mtime_ns)
    if key not in _decrypted:
        plaintext = _decrypt(encrypted, data)
        try:
            _decrypted[key] = plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise EncryptedEnvError(
                f"{encrypted}: decrypted, but it is not UTF-8 text as a .env file is; encrypt the .env again"
            ) from None
    return _decrypted[key]


def env_values(text: str) -> dict[str, str | None]:
    """``text`` parsed as a dotenv file, exactly as python-dotenv parses ``.env``."""
    return dotenv_values(stream=io.StringIO(text))


def env_file_values(env_file: str | os.PathLike[str]) -> dict[str, str | None]:
    """The variables of ``env_file``, or of its ``.age`` when that is where they are ({} for neither)."""
    text = decrypted_env(env_file)
    if text is not None:
        return env_values(text)
    path = Path(env_file).expanduser()
    return dotenv_values(path) if path.is_file() else {}


class EncryptedDotEnvSource(DotEnvSettingsSource):
    """pydantic-settings' ``.env`` source that reads ``<env file>.age`` too (decrypted in memory).

    Built by ``HomelabSettings.settings_customise_sources`` from the source pydantic-settings made,
    so ``_env_file=…`` (a path, several, or ``None``) works as before; the decrypted variables go
    through the same parsing as a file's (``parse_env_vars``) and keep the dotenv source's place
    below the environment.
    """

    @classmethod
    def replacing(cls, source: DotEnvSettingsSource) -> EncryptedDotEnvSource:
        return cls(
            source.settings_cls,
            env_file=source.env_file,
            env_file_encoding=source.env_file_encoding,
        )

    def _read_env_files(self) -> Mapping[str, str | None]:
        values = dict(super()._read_env_files())
        files = self.env_file
        if files is None:
            return values
        for env_file in [files] if isinstance(files, str | os.PathLike) else files:
            text = decrypted_env(env_file)
            if text is not None:
                values.update(
                    parse_env_vars(
                        env_values(text), self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
                    )
                )
        return values


def _header(encrypted: Path, data: bytes) -> list[str]:
    """The stanza types of an age file's header (``X25519``, ``scrypt``, …), armored or not."""
    corrupt = EncryptedEnvError(
        f"{encrypted}: not an age-encrypted file (damaged or not made by age); restore it "
        f"(git checkout -- {encrypted.name}) or encrypt the .env again"
    )
    stripped = data.strip()
    if stripped.startswith(_ARMOR_BEGIN):
        if not stripped.endswith(_ARMOR_END):
            raise corrupt
        body = stripped[len(_ARMOR_BEGIN):-len(_ARMOR_END)]
        try:
            data = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise corrupt from None
    if not data.startswith(_MAGIC):
        raise corrupt
    header = data[: data.find(b"\n---")] if b"\n---" in data else data
    return [line[3:].split(b" ", 1)[0].decode("ascii", "replace") for line in header.split(b"\n")
            if line.startswith(b"-> ")]


def _decrypt(encrypted: Path, data: bytes) -> bytes:
    kinds = _header(encrypted, data)
    if "scrypt" in kinds:
        passphrase = _passphrase(encrypted)
        try:
            return pyrage.passphrase.decrypt(data, passphrase)
        except pyrage.DecryptError:
            raise EncryptedEnvError(
                f"{encrypted}: wrong passphrase (or a damaged file); give the passphrase it was encrypted "
                f"with ({PASSPHRASE_VARIABLE} or the prompt)"
            ) from None
    if not _RECIPIENT_STANZAS & set(kinds):  # other stanzas are ignored, as age does (rage adds "grease")
        unknown = sorted(kind for kind in set(kinds) if not kind.endswith("-grease"))
        raise EncryptedEnvError(
            f"{encrypted}: encrypted for {', '.join(unknown) or 'no'} recipients, which this project cannot "
            "decrypt (it reads X25519 identities from age-keygen, SSH keys and passphrases); encrypt the "
            ".env again with `python -m deploys.library.settings encrypt`"
        )
    path, identities = _identities(encrypted)
    try:
        return pyrage.decrypt(data, identities)
    except pyrage.DecryptError as error:
        if "no matching keys" in str(error).lower():
            raise EncryptedEnvError(
                f"{encrypted}: the identity {path} is not one of its recipients; use the identity it was "
                f"encrypted to ({IDENTITY_VARIABLE}=<file>) or have it encrypted again with "
                f"--recipient {_recipient_of(identities)}"
            ) from None
        raise EncryptedEnvError(
            f"{encrypted}: cannot be decrypted ({error}); restore it (git checkout -- {encrypted.name}) "
            "or encrypt the .env again"
        ) from None


def _recipient_of(identities: list[Any]) -> str:
    first = identities[0]
    return str(first.to_public()) if hasattr(first, "to_public") else "<your SSH public key>"


def _identities(encrypted: Path) -> tuple[Path, list[Any]]:
    named = os.environ.get(IDENTITY_VARIABLE)
    path = Path(named).expanduser() if named else default_identity()
    if not path.is_file():
        where = f"{IDENTITY_VARIABLE}={named}: no such file" if named else f"no identity file at {path}"
        raise EncryptedEnvError(
            f"{encrypted} is encrypted to age recipients, and {where}; set {IDENTITY_VARIABLE} to your "
            f"identity file, or make one with `age-keygen -o {default_identity()}` (or "
            "`python -m deploys.library.settings keygen`) and have the file encrypted to it"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise EncryptedEnvError(
            f"{path}: the age identity can be read by others (mode {mode:04o}), so it is not used; "
            f"make it private: chmod 600 {path}"
        )
    return path, parse_identities(path)


def parse_identities(path: Path) -> list[Any]:
    """The identities in an identity file: ``AGE-SECRET-KEY-1…`` lines (``#`` comments allowed, as
    ``age-keygen`` writes them), or one unencrypted OpenSSH private key."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise EncryptedEnvError(f"{path}: the age identity cannot be read ({error.strerror})") from None
    if data.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
        try:
            return [pyrage.ssh.Identity.from_buffer(data)]
        except pyrage.IdentityError:
            raise EncryptedEnvError(
                f"{path}: this SSH private key cannot be used (a passphrase-protected key is not "
                "supported); use an age identity (age-keygen) instead"
            ) from None
    identities = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:  # the line itself is never shown: it may be a secret key
            raise EncryptedEnvError(
                f"{path}: line {number} is no age identity (expected AGE-SECRET-KEY-1…, as age-keygen "
                "writes it)"
            ) from None
    if not identities:
        raise EncryptedEnvError(f"{path}: holds no age identity (expected a line AGE-SECRET-KEY-1…)")
    return identities


def _passphrase(encrypted: Path) -> str:
    given = os.environ.get(PASSPHRASE_VARIABLE)
    if given:
        return given
    if sys.stdin is not None and sys.stdin.isatty():
        entered = getpass.getpass(f"Passphrase for {encrypted}: ")
        if entered:
            return entered
    raise EncryptedEnvError(
        f"{encrypted} is encrypted with a passphrase, and none was given; set {PASSPHRASE_VARIABLE} "
        "(for a run without a terminal) or run from a terminal to be asked"
    )


# -- writing ---------------------------------------------------------------------------------------

def parse_recipients(lines: list[str], where: str) -> list[Any]:
    """age recipients (``age1…``, ``ssh-ed25519 …``, ``ssh-rsa …``), one per line, ``#`` comments."""
    recipients = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("age1"):
                recipients.append(pyrage.x25519.Recipient.from_str(line))
            elif line.startswith(("ssh-ed25519 ", "ssh-rsa ")):
                recipients.append(pyrage.ssh.Recipient.from_str(line))
            else:
                raise pyrage.RecipientError(line)
        except pyrage.RecipientError:
            raise EncryptedEnvError(
                f"{where}: {line[:60]!r} is no age recipient (expected age1… from age-keygen, or an "
                "ssh-ed25519/ssh-rsa public key)"
            ) from None
    return recipients


def _new_passphrase() -> str:
    given = os.environ.get(PASSPHRASE_VARIABLE)
    if given:
        return given
    if not (sys.stdin is not None and sys.stdin.isatty()):
        raise EncryptedEnvError(
            f"--passphrase: no passphrase given; set {PASSPHRASE_VARIABLE} or run from a terminal to be asked"
        )
    first = getpass.getpass("New passphrase: ")
    if not first:
        raise EncryptedEnvError("--passphrase: an empty passphrase protects nothing; nothing was written")
    if getpass.getpass("The same passphrase again: ") != first:
        raise EncryptedEnvError("--passphrase: the two passphrases differ; nothing was written")
    return first


def write_private(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically (a file beside it, then a rename)."""
    if path.exists() and not replace:
        raise FileExistsError(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def encrypt(args: argparse.Namespace) -> int:
    plain = Path(args.env_file).expanduser()
    encrypted = encrypted_path(plain)
    if not plain.is_file():
        raise EncryptedEnvError(f"{plain}: no such file; write the settings there first (see .env.example)")
    if encrypted.exists() and not args.force:
        raise EncryptedEnvError(f"{encrypted} exists already; nothing was written (--force replaces it)")
    lines = list(args.recipient or [])
    for file in args.recipients_file or []:
        try:
            lines += Path(file).expanduser().read_text().splitlines()
        except OSError as error:
            raise EncryptedEnvError(f"--recipients-file {file}: cannot be read ({error.strerror})") from None
    if args.passphrase and lines:
        raise EncryptedEnvError("--passphrase or recipients, not both (age encrypts to one or the other)")
    if not args.passphrase and not lines:
        raise EncryptedEnvError("say whom to encrypt to: --recipient age1… (repeatable), --recipients-file "
                                "FILE, or --passphrase")
    plaintext = plain.read_bytes()
    if args.passphrase:
        ciphertext = pyrage.passphrase.encrypt(plaintext, _new_passphrase(), armored=True)
        how = "with a passphrase"
    else:
        recipients = parse_recipients(lines, "recipients")
        if not recipients:
            raise EncryptedEnvError("--recipients-file: no recipient in it; nothing was written")
        ciphertext = pyrage.encrypt(plaintext, recipients, armored=True)
        how = f"to {len(recipients)} recipient{'s' if len(recipients) > 1 else ''}"
    write_private(encrypted, ciphertext, replace=args.force)
    print(f"wrote {encrypted} (mode 0600), encrypted {how}; it is safe to commit.")
    print(f"Now delete or move {plain} (it holds the same secrets in plain text): while both exist, the "
          "settings refuse to load. Then check them: python -m deploys.library.settings")
    return 0


def keygen(args: argparse.Namespace) -> int:
    path = Path(args.output).expanduser().absolute()
    if path.is_relative_to(REPO_ROOT):
        raise EncryptedEnvError(f"{path}: inside the repository, where it could be committed; keep the "
                                f"identity outside it (default {default_identity()})")
    if path.exists():
        raise EncryptedEnvError(f"{path} exists already; an identity is never replaced (the files encrypted "
                                "to it could not be opened any more)")
    identity = pyrage.x25519.Identity.generate()
    public = identity.to_public()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    created = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    text = f"# created: {created}\n# public key: {public}\n{identity}\n"
    write_private(path, text.encode(), replace=False)
    print(f"wrote the identity {path} (mode 0600); keep a copy somewhere safe, without it .env.age is lost.")
    print(f"Its recipient (public, for --recipient): {public}")
    return 0


def main(argv: list[str]) -> int:
    """``python -m deploys.library.settings encrypt|keygen …`` (the check stays in ``settings.main``)."""
    parser = argparse.ArgumentParser(
        prog="python -m deploys.library.settings",
        description="With no command (or check): read the settings (.env, or .env.age decrypted in "
        "memory) and the environment, validate them and print them, secrets masked.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    enc = commands.add_parser("encrypt", help="encrypt .env into .env.age (age), to commit it")
    enc.add_argument("--recipient", "-r", action="append", metavar="age1…",
                     help="an age recipient (age1… or an ssh-ed25519 public key); repeatable")
    enc.add_argument("--recipients-file", "-R", action="append", metavar="FILE",
                     help="a file of recipients, one per line (# comments)")
    enc.add_argument("--passphrase", "-p", action="store_true",
                     help=f"encrypt with a passphrase (asked twice, or {PASSPHRASE_VARIABLE})")
    enc.add_argument("--force", action="store_true", help="replace an existing .env.age")
    enc.add_argument("--env-file",
                     default=os.environ.get(ENV_FILE_VARIABLE, "").strip() or str(REPO_ROOT / ".env"),
                     help="the file to encrypt, into FILE.age (default: %(default)s)")
    key = commands.add_parser("keygen", help="make an age identity (outside the repository)")
    key.add_argument("--output", "-o", default=str(default_identity()), help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        return encrypt(args) if args.command == "encrypt" else keygen(args)
    except EncryptedEnvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
