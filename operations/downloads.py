"""Files downloaded onto the host and checked by their SHA-256 (models, checkpoints)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence

from pyinfra import host, logger
from pyinfra.api import QuoteString, StringCommand, operation
from pyinfra.api.exceptions import OperationValueError

from facts.reads import read_fact
from facts.system import FileSha256s

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# Runs as `sh -c SCRIPT download URL SHA256 PATH`: the values arrive as arguments, never inside the
# script. The file is fetched into a hidden temporary file beside the target, checked, and only then
# renamed into place; whatever happens, no partial file is left.
DOWNLOAD_SCRIPT = (
    'url=$1; want=$2; dest=$3; dir=$(dirname "$dest"); '
    'umask 022; mkdir -p "$dir" || exit 1; '
    'tmp=$(mktemp "$dir/.$(basename "$dest").part.XXXXXX") || exit 1; '
    "trap 'rm -f \"$tmp\"' EXIT; trap 'rm -f \"$tmp\"; exit 1' HUP INT TERM; "
    # a stalled transfer fails instead of hanging the run: under 10 kB/s for 2 minutes, or no connection
    'if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 --connect-timeout 30 --speed-limit 10240 '
    '--speed-time 120 -o "$tmp" "$url"; '
    'elif command -v wget >/dev/null 2>&1; then wget -q --timeout=120 --tries=3 -O "$tmp" "$url"; '
    'else echo "download of $url: neither curl nor wget is installed on the host (install curl)" >&2; '
    "exit 1; fi; "
    'status=$?; [ "$status" -eq 0 ] || { echo "download of $url failed (exit $status)" >&2; exit 1; }; '
    'got=$(sha256sum < "$tmp" | cut -c1-64); '
    '[ "$got" = "$want" ] || { echo "checksum mismatch for $url: expected sha256 $want, got $got '
    '(the download was not kept)" >&2; exit 1; }; '
    'chmod 644 "$tmp" && mv -f "$tmp" "$dest"'
)


def download_command(url: str, sha256: str, path: str) -> StringCommand:
    return StringCommand("sh", "-c", QuoteString(DOWNLOAD_SCRIPT), "download", QuoteString(url), sha256,
                         QuoteString(path))


@operation()
def verified_files(files: Sequence[Mapping[str, str]]):
    """
    Make each file hold the bytes its SHA-256 names: a file that is present with that sum is left
    alone (never downloaded again); a missing one, or one with another sum, is downloaded (curl, else
    wget) into a hidden temporary file beside it, checked, and renamed into place (0644, its folder
    made if missing). A download whose sum differs fails with the URL and both sums and leaves nothing.
    The sums of all the files are read in one command.

    + files: ``{"url": …, "sha256": <64 lower-case hex>, "path": <absolute path>}`` each

    **Example:**

    .. code:: python

        downloads.verified_files(
            name="ComfyUI checkpoints",
            files=[{"url": "https://huggingface.co/…/sd_xl_base_1.0.safetensors",
                    "sha256": "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b",
                    "path": "/cold-storage/ai/comfyui/models/checkpoints/sd_xl_base_1.0.safetensors"}],
        )
    """
    for item in files:
        path, sha256 = str(item.get("path") or ""), str(item.get("sha256") or "")
        if not posixpath.isabs(path) or ".." in path.split("/"):
            raise OperationValueError(f"path: {path!r} is not an absolute path without '..'")
        if not _HEX64.match(sha256):
            raise OperationValueError(f"sha256 of {path}: {sha256!r} is not 64 lower-case hex digits")
        if not str(item.get("url") or "").startswith(("http://", "https://")):
            raise OperationValueError(f"url of {path}: {item.get('url')!r} is not an http(s) URL")
    if not files:
        host.noop("no files configured")
        return
    digests = read_fact(FileSha256s, paths=[str(item["path"]) for item in files], host=host)
    changed = 0
    for item in files:
        path, sha256, url = str(item["path"]), str(item["sha256"]), str(item["url"])
        have = digests.get(path)
        if have == sha256:
            continue
        why = "missing" if have is None else f"sha256 {have} is not the configured one"
        if not host.state.is_executing:
            logger.info(f"{host.print_prefix}download {url} -> {path} ({why})")
        changed += 1
        yield download_command(url, sha256, path)
    if not changed:
        host.noop(f"{len(files)} file(s) present with their configured SHA-256")
