"""Why certbot failed, read from its log (``letsencrypt.log``), as one line a person can act on.

certbot writes one log per run (older runs rotate to ``letsencrypt.log.1`` …); a run starts with its
``certbot version:`` line, and only the last run's lines are read. Known causes are named; otherwise
the last error certbot logged is quoted. Nothing of a credentials file is ever part of a line: certbot
logs the file's path only, and the caller redacts the values it knows besides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RUN_START = re.compile(r"^\S+ \S+:DEBUG:certbot\._internal\.main:certbot version:", re.M)
_LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+:(?P<level>[A-Z]+):(?P<logger>[^:]+):(?P<text>.*)$"
)
_EXCEPTION = re.compile(r"^[\w.]+(Error|Exception|Failed):")
LONGEST = 240  # characters of certbot's own words kept in the line


@dataclass(frozen=True)
class Failure:
    """``cause``: credentials, dns-unreachable, propagation, rate-limit, acme-unreachable, acme-untrusted,
    other or unknown (no log lines); ``summary``: what it means; ``detail``: certbot's words."""

    cause: str
    summary: str
    detail: str

    def line(self) -> str:
        return f"{self.summary} (certbot: {self.detail})" if self.detail else self.summary


# (cause, summary, patterns): the first cause one of whose patterns matches wins
CAUSES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("acme-untrusted", "the ACME server's HTTPS certificate is not trusted",
     (r"CERTIFICATE_VERIFY_FAILED", r"SSLCertVerificationError")),
    ("acme-unreachable", "the ACME server could not be reached",
     (r"requests\.exceptions\.ConnectionError", r"Failed to establish a new connection",
      r"Max retries exceeded with url", r"Name or service not known", r"Temporary failure in name resolution",
      r"Connection refused", r"Read timed out")),
    ("rate-limit", "the ACME server's rate limit was hit (Let's Encrypt: 5 certificates for the same names "
     "a week); wait for the limit to pass",
     (r"rateLimited", r"too many certificates", r"too many (failed authorizations|new orders|requests)")),
    ("credentials", "the DNS provider refused the credentials",
     (r"\bNOTAUTH\b", r"\bBADKEY\b", r"\bBADSIG\b", r"Received response from server: REFUSED",
      r"The peer didn't know the key we used", r"The peer didn't like the signature we sent",
      r"Invalid request headers", r"Authentication error",
      r"(zone_id|Cloudflare API): (6003|6111|9103|9109|10000)\b",
      r"Unknown X-Auth-Key", r"Invalid access token", r"401 Client Error: Unauthorized",
      r"403 Client Error: Forbidden")),
    ("dns-unreachable", "the DNS provider's server did not answer",
     (r"Encountered error when making query: The DNS operation timed out",
      r"Encountered error (adding|deleting) TXT record: The DNS operation timed out")),
    ("propagation", "the ACME server did not find the challenge's TXT record (not propagated yet, or "
     "written to another zone); a longer propagation wait may help",
     (r"Incorrect TXT record", r"NXDOMAIN looking up TXT", r"No TXT record found",
      r"looking up TXT for _acme-challenge", r"Error retrieving TXT records for DNS challenge",
      r"failed to verify the DNS TXT records")),
)


def last_run(text: str) -> str:
    """The lines of the log's last certbot run (the whole text when no run start is found)."""
    starts = [match.start() for match in RUN_START.finditer(text)]
    return text[starts[-1]:] if starts else text


def _error_lines(run: str) -> list[str]:
    """What certbot said at ERROR level, its traceback's last lines, and the CA's "Detail:" lines."""
    found: list[str] = []
    for raw in run.splitlines():
        line = raw.strip()
        match = _LOG_LINE.match(line)
        if match and match.group("level") in ("ERROR", "CRITICAL"):
            found.append(match.group("text").strip())
        elif not match and (line.startswith("Detail:") or _EXCEPTION.match(line)):
            found.append(line)
    return [line for line in found if line and line not in ("An unexpected error occurred:",)]


def _shorten(text: str) -> str:
    """One line of at most ``LONGEST`` characters: its start and its end (where a cause is worded)."""
    text = " ".join(text.split())
    if len(text) <= LONGEST:
        return text
    head = LONGEST * 2 // 5
    return text[:head] + " … " + text[-(LONGEST - head - 3):]


def explain(text: str, secrets: tuple[str, ...] = ()) -> Failure:
    """Why the last certbot run in ``text`` failed. ``secrets``: values never to show."""
    run = last_run(text)
    errors = _error_lines(run)
    detail = ""
    for cause, summary, patterns in CAUSES:
        for pattern in patterns:
            hit = next((line for line in errors if re.search(pattern, line)), None)
            if hit is None:  # the pattern may be in the run's other lines (a debug traceback)
                hit = next((line.strip() for line in run.splitlines() if re.search(pattern, line)), None)
            if hit is not None:
                detail = _redact(_shorten(_LOG_LINE.sub(r"\g<text>", hit).strip()), secrets)
                return Failure(cause, summary, detail)
    if errors:
        return Failure("other", "certbot failed", _redact(_shorten(errors[-1]), secrets))
    return Failure("unknown", "certbot's log says nothing of this run", "")


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def credential_values(ini_text: str) -> tuple[str, ...]:
    """The values of a certbot credentials file (``key = value`` lines), to redact them."""
    values = []
    for line in ini_text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.strip().startswith(("#", ";")) and value.strip():
            values.append(value.strip().strip('"'))
    return tuple(values) + ((ini_text.strip(),) if ini_text.strip() else ())
