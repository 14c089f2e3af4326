"""Facts about package sources: every apt and dnf repository the host has configured."""

from __future__ import annotations

import configparser
from typing import Any

from pyinfra.api import FactBase
from pyinfra.facts.apt import AptSourcesFile, parse_apt_list_file

_MARK = "### pyinfra-repos "
APT_FILES = "/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources"
DNF_FILES = "/etc/yum.repos.d/*.repo"
_TRUE = {"1", "yes", "true", "on"}


def _signed_by(value: Any) -> str | None:
    """A keyring path, or ``(inline key)`` for a deb822 ``Signed-By`` that embeds the key itself."""
    if value is None:
        return None
    if isinstance(value, list):
        value = " ".join(value) if all("\n" not in v and "BEGIN PGP" not in v for v in value) else "\n"
    text = str(value)
    return "(inline key)" if "\n" in text or "BEGIN PGP" in text else text.strip()


def _apt(path: str, lines: list[str]) -> list[dict[str, Any]]:
    # pyinfra's own parsers (as its AptSources fact uses them): comments, `[ opt=… ]` option
    # blocks, deb822 continuation lines and `Enabled: no` stanzas are handled there
    deb822 = path.endswith(".sources")
    parsed = AptSourcesFile.parse_sources_file(lines) if deb822 else parse_apt_list_file(lines)
    return [
        {
            "file": path,
            "type": repo.type,
            "uri": repo.url,
            "suite": repo.distribution,
            "components": list(repo.components),
            "signed_by": _signed_by(repo.options.get("signed-by")),
        }
        for repo in parsed
    ]


def _dnf(path: str, lines: list[str]) -> list[dict[str, Any]]:
    parser = configparser.ConfigParser(interpolation=None, strict=False, comment_prefixes=("#", ";"))
    try:
        parser.read_string("\n".join(lines), source=path)
    except configparser.Error:
        return []
    found = []
    for section in parser.sections():
        values = parser[section]
        # baseurl may list several URLs, separated by whitespace, commas or continuation lines
        urls = values.get("baseurl", "").replace(",", " ").split()
        found.append(
            {
                "file": path,
                "id": section,
                "baseurls": urls,
                "enabled": values.get("enabled", "1").strip().lower() in _TRUE,
            }
        )
    return found


class ConfiguredRepositories(FactBase[dict[str, list[dict[str, Any]]]]):
    """
    Returns every package repository configured on the host, read in one command: apt one-line
    ``.list`` and deb822 ``.sources`` entries under any file name, and dnf ``.repo`` sections.

    .. code:: python

        {
            "apt": [
                {
                    "file": "/etc/apt/sources.list.d/nvidia-container-toolkit.list",
                    "type": "deb",
                    "uri": "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH)",
                    "suite": "/",
                    "components": [],
                    "signed_by": "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg",
                },
            ],
            "dnf": [
                {
                    "file": "/etc/yum.repos.d/docker-ce.repo",
                    "id": "docker-ce-stable",
                    "baseurls": ["https://download.docker.com/linux/fedora/$releasever/$basearch/stable"],
                    "enabled": True,
                },
            ],
        }

    apt entries are the enabled ones only (commented lines and ``Enabled: no`` stanzas are left
    out, as apt itself ignores them), one per URI and suite; dnf sections come with ``enabled``.
    ``signed_by`` is a keyring path, ``(inline key)`` or ``None``. No repository files: empty lists.
    """

    def command(self) -> str:
        return (
            f"for f in {APT_FILES} {DNF_FILES}; do "
            f'[ -f "$f" ] || continue; echo "{_MARK}$f"; cat "$f"; echo; '
            "done; true"
        )

    @staticmethod
    def default() -> dict[str, list[dict[str, Any]]]:
        return {"apt": [], "dnf": []}

    def process(self, output: list[str]) -> dict[str, list[dict[str, Any]]]:
        files: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in output:
            if line.startswith(_MARK):
                current = files.setdefault(line[len(_MARK) :].strip(), [])
            elif current is not None:
                current.append(line)
        found = self.default()
        for path, lines in files.items():
            if path.endswith(".repo"):
                found["dnf"] += _dnf(path, lines)
            else:
                found["apt"] += _apt(path, lines)
        return found
