"""Output of one command made of several parts, each opened by a marker line (``<mark><name>``)."""

from __future__ import annotations


def split_sections(output: list[str], mark: str, skip_blank: bool = False) -> dict[str, list[str]]:
    """Section name -> its lines (lines before the first marker are dropped; with ``skip_blank``, blank
    lines too). A section that repeats gathers the lines of each."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output:
        if line.startswith(mark):
            current = sections.setdefault(line[len(mark):].strip(), [])
        elif current is not None and (line.strip() or not skip_blank):
            current.append(line)
    return sections
