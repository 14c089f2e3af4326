"""
Manage NGINX Proxy Manager through its API: the first admin account and proxy hosts.

The desired-state logic is plain Python (``plan_proxy_host`` / ``apply_proxy_host``) that works on
the hosts the API lists; the pyinfra operations read the current state through a client while the
plan is made (reading is side-effect free, so ``--dry`` tells the truth) and apply the plan at
execute time through a ``FunctionCommand``. How the API is reached is the caller's business: each
operation takes a *client factory*, a callable returning an ``NpmClient``.

A proxy host is identified by its domain names (case-insensitive). Hosts this project created are
marked ``meta.managed_by = <manager tag>``; a proxy host without that mark on one of our domains is
reported and left alone: never changed, and never removed by ``present=False``. A name held by a
redirection host, a 404 host or a stream can never be given to a proxy host (NPM answers "already in
use"): the plan fails on it, naming that host.

A managed host whose config nginx rejected (``meta.nginx_online`` not true) is never "up to date":
every run applies it again, and fails with nginx's error while nginx keeps rejecting it. Expected
failures (nginx's refusal, a failed certificate request, a conflict) fail the operation on its host
with one line; they are not exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, StringCommand, operation
from pyinfra.api.exceptions import OperationValueError

from operations import certbot_log, diffs
from operations.clients import Secret, ServiceUnreachable, read_while_planning, reveal
from operations.clients.npm import (
    NpmAuthError,
    NpmCertificateError,
    NpmClient,
    NpmConflictError,
    NpmError,
    NpmNginxError,
    NpmNotFoundError,
    nginx_error_line,
    shown_names,
)
from operations.failures import named, refuse, report

MANAGER_TAG = "homelab-pyinfra"
SSL_FLAGS = ("ssl_forced", "http2_support", "hsts_enabled", "hsts_subdomains")
Action = Literal["create", "update", "delete", "noop", "conflict"]
ClientFactory = Callable[[], NpmClient]


@dataclass(frozen=True)
class SslSpec:
    """``certificate`` is an existing certificate id, ``"new"`` (Let's Encrypt), or the domain names of a
    Let's Encrypt certificate (a list), found in NPM by them when the host is written (it may be
    requested earlier in the same run)."""

    certificate: int | Literal["new"] | tuple[str, ...]
    force_ssl: bool = True
    http2: bool = True
    hsts: bool = False
    hsts_subdomains: bool = False

    @classmethod
    def parse(cls, value: SslSpec | Mapping[str, Any] | None) -> SslSpec | None:
        if value is None or isinstance(value, SslSpec):
            return value
        unknown = set(value) - {"certificate", "force_ssl", "http2", "hsts", "hsts_subdomains"}
        if unknown or "certificate" not in value:
            raise OperationValueError(
                f"ssl: expected certificate (id, 'new' or domain names) and flags, got keys {sorted(value)}"
            )
        certificate = value["certificate"]
        if isinstance(certificate, list | tuple):
            if not certificate or not all(isinstance(name, str) and name.strip() for name in certificate):
                raise OperationValueError(
                    f"ssl.certificate: expected the certificate's domain names, got {certificate!r}"
                )
            return cls(**{**dict(value), "certificate": tuple(name.strip() for name in certificate)})
        if certificate != "new" and (not isinstance(certificate, int) or certificate < 1):
            raise OperationValueError(
                f"ssl.certificate: expected a certificate id >= 1, 'new' or domain names, got {certificate!r}"
            )
        return cls(**dict(value))

    def flags(self) -> dict[str, bool]:
        """The SSL flags as NPM will store them (HSTS needs force-SSL, subdomains need HSTS)."""
        hsts = self.hsts and self.force_ssl
        return {
            "ssl_forced": self.force_ssl,
            "http2_support": self.http2,
            "hsts_enabled": hsts,
            "hsts_subdomains": self.hsts_subdomains and hsts,
        }


@dataclass(frozen=True)
class ProxyHostPlan:
    """What to do for one proxy host. ``fields`` is the request body (create/update);
    ``followup`` the update that restores the SSL flags after a Let's Encrypt request;
    ``changes`` maps each changed field to (current, desired) for the report."""

    action: Action
    domain_names: tuple[str, ...]
    host_id: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    followup: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    reason: str = ""
    blocking: bool = False  # a conflict that can never be applied (a host of another kind holds a name)

    def describe(self) -> str:
        names = shown_names(self.domain_names)
        if self.action == "create":
            target = f"{self.fields['forward_scheme']}://{self.fields['forward_host']}:{self.fields['forward_port']}"
            return f"create proxy host {names} -> {target}"
        if self.action == "update":
            diff = ", ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in _sorted_changes(self.changes))
            what = "; ".join(part for part in (diff, self.reason) if part)
            return f"update proxy host #{self.host_id} ({names}): {what}"
        if self.action == "delete":
            return f"delete proxy host #{self.host_id} ({names})"
        if self.action == "conflict" and self.blocking:
            return f"proxy host {names} cannot be created: {self.reason}"
        if self.action == "conflict":
            return f"proxy host {names} left alone: {self.reason}"
        return f"proxy host {names} is up to date" if self.reason == "" else self.reason


def _sorted_changes(changes: Mapping[str, tuple[Any, Any]]) -> list[tuple[str, Any, Any]]:
    return [(key, *changes[key]) for key in sorted(changes)]


def _lower(names: Iterable[str]) -> set[str]:
    return {name.strip().lower() for name in names}


def _is_managed(existing: Mapping[str, Any], manager_tag: str) -> bool:
    return (existing.get("meta") or {}).get("managed_by") == manager_tag


def _overlapping(existing_hosts: Iterable[Mapping[str, Any]], wanted: set[str]) -> list[Mapping[str, Any]]:
    return [h for h in existing_hosts if _lower(h.get("domain_names", [])) & wanted]


def _desired_fields(
    domain_names: Sequence[str],
    forward_scheme: str,
    forward_host: str,
    forward_port: int,
    websocket: bool,
    block_exploits: bool,
    access_list_id: int,
    ssl: SslSpec | None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "domain_names": sorted(name.strip() for name in domain_names),
        "forward_scheme": forward_scheme,
        "forward_host": forward_host,
        "forward_port": int(forward_port),
        "allow_websocket_upgrade": websocket,
        "block_exploits": block_exploits,
        "access_list_id": int(access_list_id),
        "enabled": True,
    }
    if ssl is None:
        fields.update(dict.fromkeys(SSL_FLAGS, False))
    else:
        fields["certificate_id"] = ssl.certificate
        fields.update(ssl.flags())
    return fields


def _differences(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    for key, want in desired.items():
        have = current.get(key)
        if key == "domain_names":
            if _lower(have or []) != _lower(want):
                changes[key] = (list(have or []), want)
        elif key == "certificate_id" and want == "new":
            if not have:
                changes[key] = (have, want)
        elif have != want:
            changes[key] = (have, want)
    return changes


def _held_by_other_kinds(
    other_hosts: Iterable[tuple[str, Mapping[str, Any]]], wanted: set[str]
) -> list[str]:
    """"<name> is held by <kind> #<id>" for each wanted name a redirection host, 404 host or stream
    holds (streams carry no names in NPM 2.15; one that does is checked the same way)."""
    held = []
    for kind, other in other_hosts:
        for name in sorted(_lower(other.get("domain_names") or []) & wanted):
            held.append(f"{name} is held by NPM's {kind} #{other.get('id')}")
    return held


def _nginx_trouble(current: Mapping[str, Any]) -> str:
    """Why a managed host must be applied again although its fields match, or "" when nginx runs it."""
    meta = current.get("meta") or {}
    if meta.get("nginx_online") is True:
        return ""
    if meta.get("nginx_online") is False:
        return f"apply again, nginx rejected its config: {nginx_error_line(meta.get('nginx_err'))}"
    return "apply again, NPM never wrote its nginx config (an earlier request failed)"


def _with_certificate_request(plan_fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split off the SSL flags NPM drops when it requests a certificate (upstream #3956)."""
    if plan_fields.get("certificate_id") != "new":
        return plan_fields, {}
    followup = {key: plan_fields[key] for key in SSL_FLAGS if plan_fields.get(key)}
    first = {k: v for k, v in plan_fields.items() if k not in SSL_FLAGS}
    return first, followup


def plan_proxy_host(
    existing_hosts: Iterable[Mapping[str, Any]],
    domain_names: Sequence[str],
    forward_scheme: str = "http",
    forward_host: str = "",
    forward_port: int = 80,
    websocket: bool = True,
    block_exploits: bool = True,
    access_list_id: int = 0,
    ssl: SslSpec | Mapping[str, Any] | None = None,
    present: bool = True,
    manager_tag: str = MANAGER_TAG,
    other_hosts: Iterable[tuple[str, Mapping[str, Any]]] = (),
) -> ProxyHostPlan:
    """Compare the hosts NPM lists with the desired one and decide what to do.

    ``other_hosts`` are ``(kind, host)`` pairs of NPM's redirection hosts, 404 hosts and streams
    (``NpmClient.list_other_hosts``): a name one of them holds makes a blocking conflict.
    ``ssl=None`` wants no SSL flags; an attached certificate is then left attached (NPM's API can only
    detach one with ``certificate_id: 0``, which it stores as "has a certificate").
    """
    if not domain_names:
        raise OperationValueError("domain_names: expected at least one domain name")
    wanted = _lower(domain_names)
    names = tuple(sorted(name.strip() for name in domain_names))
    held = _held_by_other_kinds(other_hosts, wanted) if present else []
    if held:
        return ProxyHostPlan(
            "conflict",
            names,
            reason=f"{'; '.join(held)} (NPM gives a name to one host only): delete that host or take the "
            "name off it in NPM's admin UI, then run again",
            blocking=True,
        )
    overlapping = _overlapping(existing_hosts, wanted)
    foreign = [h for h in overlapping if not _is_managed(h, manager_tag)]
    managed = [h for h in overlapping if _is_managed(h, manager_tag)]
    if foreign:
        foreign_held = "; ".join(
            f"{', '.join(sorted(_lower(h['domain_names']) & wanted))} held by proxy host #{h['id']}"
            for h in foreign
        )
        if not present:
            return ProxyHostPlan(
                "conflict",
                names,
                reason=f"{foreign_held}, not managed by {manager_tag}: a proxy host this deploy did not "
                "make is never removed by it (delete it in NPM's admin UI if it should go)",
            )
        return ProxyHostPlan(
            "conflict",
            names,
            reason=f"{foreign_held}, not managed by {manager_tag} (delete it in NPM's admin UI to let this "
            "deploy create its own)",
        )
    if len(managed) > 1:
        ids = ", ".join(f"#{h['id']}" for h in managed)
        return ProxyHostPlan(
            "conflict", names, reason=f"several managed proxy hosts share these names: {ids}"
        )
    current = managed[0] if managed else None
    if not present:
        if current is None:
            return ProxyHostPlan("noop", names, reason=f"proxy host {', '.join(names)} is absent")
        return ProxyHostPlan("delete", names, host_id=int(current["id"]))
    desired = _desired_fields(
        names,
        forward_scheme,
        forward_host,
        forward_port,
        websocket,
        block_exploits,
        access_list_id,
        SslSpec.parse(ssl),
    )
    if current is None:
        fields, followup = _with_certificate_request({**desired, "meta": {"managed_by": manager_tag}})
        return ProxyHostPlan("create", names, fields=fields, followup=followup)
    changes = _differences(current, desired)
    trouble = _nginx_trouble(current)
    if not changes and not trouble:
        return ProxyHostPlan("noop", names, host_id=int(current["id"]))
    if changes:
        wanted_fields = {key: desired[key] for key in changes}
    else:  # the same fields again: NPM writes the config anew on every update
        wanted_fields = {k: v for k, v in desired.items() if not (k == "certificate_id" and v == "new")}
    fields, followup = _with_certificate_request(wanted_fields)
    if followup:  # the certificate request resets every flag: restore all of them
        followup = {key: desired[key] for key in SSL_FLAGS if desired[key]}
    return ProxyHostPlan(
        "update",
        names,
        host_id=int(current["id"]),
        fields=fields,
        followup=followup,
        changes=changes,
        reason=trouble,
    )


def apply_proxy_host(client: NpmClient, plan: ProxyHostPlan) -> dict[str, Any] | None:
    """Carry out ``plan``; returns the host as stored (None after a delete or a no-op).

    A conflict raises ``NpmConflictError``: it is never applied.
    """
    if plan.action == "conflict":
        raise NpmConflictError(plan.describe())
    if plan.action == "noop":
        return None
    if plan.action == "delete":
        assert plan.host_id is not None
        client.delete_proxy_host(plan.host_id)
        return None
    if plan.action == "create":
        stored = client.create_proxy_host(plan.fields)
    else:
        assert plan.host_id is not None
        stored = client.update_proxy_host(plan.host_id, plan.fields, list(plan.domain_names))
    if plan.followup:
        stored = client.update_proxy_host(int(stored["id"]), plan.followup, list(plan.domain_names))
    return stored


def _applying(client_factory: ClientFactory, plan: ProxyHostPlan) -> FunctionCommand:
    """Carry out ``plan`` at execute time; NPM's refusals (nginx, a certificate request, a conflict,
    validation) fail the operation with their one-line message."""

    def apply(state: Any, host: Any) -> bool:
        try:
            client = client_factory()
            apply_proxy_host(client, _resolved(client, plan))
        except (NpmNginxError, NpmCertificateError) as error:  # they name the host themselves
            return report(host, str(error))
        except (NpmError, ServiceUnreachable) as error:  # refused, or (when the run gets here) no answer
            return report(host, f"{plan.describe()} failed: {error}")
        return True

    return FunctionCommand(named(apply, plan.describe()), (), {})


@operation()
def admin(client_factory: ClientFactory):
    """
    Make the configured account NPM's admin: create it in setup mode (2.13+), or replace the default
    ``admin@example.com`` / ``changeme`` (≤ 2.12).

    + client_factory: callable returning an ``NpmClient`` with the configured credentials

    **Example:**

    .. code:: python

        npm.admin(name="NPM admin account", client_factory=make_npm_client)
    """
    try:
        reachable, state = read_while_planning(
            lambda: client_factory().admin_state(), host.state.is_executing
        )
    except (NpmAuthError, ServiceUnreachable) as error:  # refused, or (when the run gets here) no answer
        yield from refuse(str(error))
        return
    if not reachable:
        yield FunctionCommand(
            named(
                lambda: client_factory().ensure_admin(),
                "npm: set up the admin account (NPM starts in this run)",
            ),
            (),
            {},
        )
        return
    if state == "ready":
        host.noop("NPM admin account is set up")
        return
    what = {
        "setup": "create the first admin (setup mode)",
        "default": "replace the default admin credentials",
        "rotate": "change the admin's credentials to the configured ones",
    }[state]

    def apply(state: Any, host: Any) -> bool:
        try:
            client_factory().ensure_admin()
        except (NpmError, ServiceUnreachable) as error:  # a refusal says which setting and what to do
            return report(host, f"npm: {what}: {error}")
        return True

    yield FunctionCommand(named(apply, f"npm: {what}"), (), {})


@operation()
def proxy_host(
    client_factory: ClientFactory,
    domain_names: Sequence[str],
    forward_scheme: str = "http",
    forward_host: str = "",
    forward_port: int = 80,
    websocket: bool = True,
    block_exploits: bool = True,
    access_list_id: int = 0,
    ssl: Mapping[str, Any] | None = None,
    present: bool = True,
    manager_tag: str = MANAGER_TAG,
    fail_on_conflict: bool = False,
):
    """
    Add, update or remove an NPM proxy host, found by its domain names (case-insensitive).

    + client_factory: callable returning an ``NpmClient`` (logged in lazily)
    + domain_names: the names the host answers to
    + forward_scheme/forward_host/forward_port: where requests go
    + websocket: allow websocket upgrades
    + block_exploits: NPM's "block common exploits"
    + access_list_id: an access list id (0 = public)
    + ssl: ``None``, or ``{"certificate": id | "new" | [domain names], "force_ssl", "http2", "hsts",
      "hsts_subdomains"}``; domain names name a Let's Encrypt certificate NPM holds (found when the host
      is written: ``dns_certificate`` may request it earlier in the same run)
    + present: whether the host should exist
    + manager_tag: the ``meta.managed_by`` mark of hosts this deploy owns
    + fail_on_conflict: fail instead of warning when a proxy host not managed by us holds one of the
      names (a redirection host, 404 host or stream holding one always fails the operation)

    **Example:**

    .. code:: python

        npm.proxy_host(
            name="chat.example.com -> open-webui",
            client_factory=make_npm_client,
            domain_names=["chat.example.com"],
            forward_host="open-webui",
            forward_port=8080,
        )
    """
    spec = SslSpec.parse(ssl)
    names = spec.certificate if spec is not None and isinstance(spec.certificate, tuple) else None
    try:
        reachable, existing = read_while_planning(
            lambda: _read_hosts(client_factory(), names), host.state.is_executing
        )
    except ServiceUnreachable as error:  # when the run gets here and NPM still does not answer
        yield from refuse(str(error))
        return
    proxies, others, certificate = existing if reachable else ([], [], None)
    if spec is not None and certificate is not None:  # known now: compared by its id
        ssl = replace(spec, certificate=int(certificate["id"]))
    plan = plan_proxy_host(
        proxies,
        domain_names,
        forward_scheme,
        forward_host,
        forward_port,
        websocket,
        block_exploits,
        access_list_id,
        ssl,
        present,
        manager_tag,
        others,
    )
    if plan.action == "conflict":
        if plan.blocking or fail_on_conflict:
            yield from refuse(plan.describe())
            return
        if not host.state.is_executing:  # said once, while planning (so `--dry` shows it too)
            logger.warning(f"{host.print_prefix}{plan.describe()}")
        host.noop(plan.describe())
        return
    if plan.action == "noop":
        host.noop(plan.describe())
        return
    diffs.show(plan.describe())
    yield _applying(client_factory, plan)


def _read_hosts(
    client: NpmClient, certificate_names: tuple[str, ...] | None = None
) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]], dict[str, Any] | None]:
    """The proxy hosts, the other kinds of hosts, and the unexpired certificate of these names (if any)."""
    certificate = None
    if certificate_names:
        certificate = client.find_certificate_by_names(certificate_names)
        if certificate is not None and expired(certificate):
            certificate = None
    return client.list_proxy_hosts(), client.list_other_hosts(), certificate


def _resolved(client: NpmClient, plan: ProxyHostPlan) -> ProxyHostPlan:
    """``plan`` with a certificate named by its domain names replaced by its id, read now (the
    certificate may have been requested earlier in this run); ``NpmNotFoundError`` when NPM has none."""
    names = plan.fields.get("certificate_id")
    if not isinstance(names, tuple):
        return plan
    found = client.find_certificate_by_names(names)
    if found is None or expired(found):
        raise NpmNotFoundError(
            f"NPM holds no valid Let's Encrypt certificate for {shown_names(names)} (its request failed "
            "or has not run): the proxy host is left as it is"
        )
    fields = {**plan.fields, "certificate_id": int(found["id"])}
    return replace(plan, fields=fields)


# -- certificates by the DNS challenge --------------------------------------------------------------
def expires_at(certificate: Mapping[str, Any]) -> datetime | None:
    """When a certificate expires (NPM's ``expires_on``, "YYYY-MM-DD HH:MM:SS" in UTC), or None."""
    text = str(certificate.get("expires_on") or "")
    for form in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def expired(certificate: Mapping[str, Any], now: datetime | None = None) -> bool:
    """Whether a certificate has expired (one whose expiry cannot be read counts as expired)."""
    when = expires_at(certificate)
    return when is None or when <= (now or datetime.now(UTC))


class _CertificateRequest(FunctionCommand):
    """Request the certificate at execute time (unless NPM has it by then); when NPM answers that
    certbot failed, read certbot's log on the host (the operation's own connection and arguments: sudo)
    and fail with one line naming the cause."""

    def __init__(self, description: str, request: Callable[[], str | None], log_path: str | None,
                 secrets: tuple[str, ...], remedies: Mapping[str, str]) -> None:
        super().__init__(named(lambda: None, description), (), {})
        self.description = description
        self.request = request
        self.log_path = log_path
        self.secrets = secrets
        self.remedies = remedies

    def execute(self, state: Any, host: Any, connector_arguments: Any) -> bool:
        try:
            self.request()
        except NpmCertificateError:
            return report(host, self._failure_line(host, connector_arguments))
        except (NpmError, ServiceUnreachable) as error:
            return report(host, f"{self.description} failed: {error}")
        return True

    def _failure_line(self, host: Any, connector_arguments: Any) -> str:
        text = ""
        if self.log_path:
            try:
                status, output = host.run_shell_command(
                    StringCommand("tail", "-c", "262144", self.log_path), **(connector_arguments or {})
                )
                text = output.stdout if status else ""
            except Exception:  # noqa: BLE001 - the log is read to explain; its absence is said
                text = ""
        failure = certbot_log.explain(text, self.secrets)
        remedy = self.remedies.get(failure.cause, "")
        where = (f"certbot's log: {self.log_path} on the host" if self.log_path
                 else "certbot's log: /data/logs/letsencrypt.log in NPM's container")
        parts = [f"{self.description} failed: {failure.line()}", remedy, where]
        return "; ".join(part for part in parts if part)


@operation()
def dns_certificate(
    client_factory: ClientFactory,
    domain_names: Sequence[str],
    dns_provider: str,
    dns_credentials: Secret | None = None,
    propagation_seconds: int | None = None,
    certbot_log_path: str | None = None,
    remedies: Mapping[str, str] | None = None,
):
    """
    Make NPM hold a Let's Encrypt certificate for exactly these names, requested by the DNS-01
    challenge (a wildcard needs it); found by its names (case-insensitive). One NPM has and that has not
    expired is left alone (NPM renews it itself); a missing or expired one is requested once. NPM waits
    for certbot before it answers (minutes). A failed request fails the operation with one line: the
    cause read from certbot's log on the host.

    + client_factory: callable returning an ``NpmClient``
    + domain_names: the certificate's names (``["*.home.example.com", "home.example.com"]``)
    + dns_provider: the DNS provider's key in NPM's certbot plugin list (``cloudflare``, ``rfc2136``, …)
    + dns_credentials: the provider's credentials file content (a secret: sent to NPM's API only)
    + propagation_seconds: how long certbot waits for the TXT record (the plugin's default when None)
    + certbot_log_path: where certbot's log (NPM's ``/data/logs/letsencrypt.log``) is on the host
    + remedies: what to do, by cause (``certbot_log.CAUSES``), added to the failure's line

    **Example:**

    .. code:: python

        npm.dns_certificate(
            name="Wildcard certificate",
            client_factory=make_npm_client,
            domain_names=["*.home.example.com", "home.example.com"],
            dns_provider="cloudflare",
            dns_credentials=settings.tls_dns_credentials,
        )
    """
    names = [name.strip() for name in domain_names if name.strip()]
    if not names:
        raise OperationValueError("domain_names: expected at least one domain name")
    try:
        reachable, found = read_while_planning(
            lambda: client_factory().find_certificate_by_names(names), host.state.is_executing
        )
    except ServiceUnreachable as error:  # when the run gets here and NPM still does not answer
        yield from refuse(str(error))
        return
    shown = shown_names(names)
    if found is not None and not expired(found):
        host.noop(f"certificate {shown} is in NPM (#{found['id']}, expires {found.get('expires_on')})")
        return
    if found is not None:
        description = (f"request the certificate {shown} again: #{found['id']} expired "
                       f"{found.get('expires_on')}")
    elif reachable:
        description = f"request the certificate {shown} (DNS challenge, {dns_provider})"
    else:
        description = f"request the certificate {shown} (DNS challenge, {dns_provider}) unless NPM has it"
    diffs.show(description)
    secrets = certbot_log.credential_values(reveal(dns_credentials)) if dns_credentials is not None else ()

    def request() -> str | None:
        client = client_factory()
        current = client.find_certificate_by_names(names)
        if current is not None and not expired(current):  # made meanwhile: nothing to ask
            return None
        created = client.create_dns_certificate(names, dns_provider, dns_credentials, propagation_seconds)
        return str(created.get("id"))

    yield _CertificateRequest(description, request, certbot_log_path, secrets, remedies or {})
