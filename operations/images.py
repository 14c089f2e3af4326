"""Container images: references as Docker names them, and pulls done before anything stops."""

from __future__ import annotations

import re
import shlex
from typing import NamedTuple

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationValueError

from facts.images import LocalImages
from facts.reads import read_fact

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_DOCKER_HUB = ("docker.io", "index.docker.io")


class ImageRef(NamedTuple):
    """An image reference split as Docker reads it. ``repository`` is the name as the engine lists it
    in an image's ``RepoDigests`` (Docker Hub's ``docker.io/`` and ``library/`` left out)."""

    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        name, _, digest = reference.partition("@")
        if digest and not _DIGEST.match(digest):
            raise OperationValueError(f"image {reference!r}: {digest!r} is not a sha256 digest")
        slash = name.rfind("/")
        colon = name.rfind(":")
        tag = None
        if colon > slash:
            name, tag = name[:colon], name[colon + 1:]
        first, _, rest = name.partition("/")
        if rest and first in _DOCKER_HUB:
            name = rest
            if name.startswith("library/") and name.count("/") == 1:
                name = name[len("library/"):]
        if not name:
            raise OperationValueError(f"image {reference!r}: no repository name")
        return cls(name, tag, digest or None)

    def pinned(self, digest: str) -> str:
        """The reference that names exactly the image with ``digest`` in this repository."""
        return f"{self.repository}@{digest}"


def digest_of(pinned: str | None) -> str | None:
    """The ``sha256:…`` a pinned reference (``repo@sha256:…``, or an image ID) names; ``None`` if none."""
    if not pinned:
        return None
    candidate = pinned.rpartition("@")[2]
    return candidate if _DIGEST.match(candidate) else None


def short(pinned: str | None) -> str:
    """``sha256:0f2c1a9e5b7d`` for a digest or a pinned reference: enough to tell two images apart."""
    digest = digest_of(pinned)
    return digest[:19] if digest else (pinned or "none")


def pull_command(refs: list[str]) -> str:
    """Pull ``refs`` at once, in parallel; if any pull fails, fail naming each failed image and the
    engine's reason, after every pull has ended (what was pulled stays: nothing runs it yet)."""
    quoted = " ".join(shlex.quote(ref) for ref in refs)
    return (
        'dir=$(mktemp -d) || exit 1; i=0; '
        f'for ref in {quoted}; do i=$((i + 1)); '
        '( docker pull --quiet "$ref" >/dev/null 2>"$dir/$i" || : > "$dir/$i.failed" ) & done; wait; '
        'failed=0; i=0; '
        f'for ref in {quoted}; do i=$((i + 1)); '
        'if [ -f "$dir/$i.failed" ]; then failed=1; '
        'echo "could not pull $ref: $(tr -s \'\\n\' \' \' < "$dir/$i" '
        '| sed \'s/^Error response from daemon: //; s/ *$//\')" >&2; '
        'fi; done; rm -rf "$dir"; '
        '[ "$failed" = 0 ] || '
        '{ echo "nothing was stopped or changed: the services run as before" >&2; exit 1; }'
    )


@operation()
def pulled(refs: list[str], present_ok: bool = True, digests: dict[str, str] | None = None):
    """
    Pull these images before anything that runs them changes: all at once, in parallel. A failed pull
    fails the operation naming each image and why, and nothing else has changed yet.

    + refs: image references (``name:tag`` or ``name@sha256:…``)
    + present_ok: skip the references the engine already holds (``False``: pull each again, to learn
      whether its tag has moved)
    + digests: reference -> the digest its registry serves for it now, where known: a reference the
      engine holds as another image (pulled before its tag moved) is pulled again

    **Example:**

    .. code:: python

        images.pulled(name="New images pulled first", refs=["ollama/ollama:0.12.7"])
    """
    for ref in refs:
        ImageRef.parse(ref)
    wanted = list(dict.fromkeys(refs))
    if wanted and present_ok:
        held = read_fact(LocalImages, refs=wanted, host=host)
        served = digests or {}
        wanted = [ref for ref in wanted if ref not in held or (
            ref in served and ImageRef.parse(ref).pinned(served[ref]) not in held[ref]["repo_digests"])]
    if not wanted:
        host.noop("no image to pull" if not refs else f"images on the host: {', '.join(refs)}")
        return
    yield pull_command(wanted)
