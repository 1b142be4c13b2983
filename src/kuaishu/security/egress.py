"""Outbound connections (对外连接): the platform reaches only the hosts, networks and folders the
operator put on the allow list — collection sources, push endpoints and table-sync targets alike.

A host name is resolved and *every* address it resolves to is checked when the connection is
made; the connection then goes to a checked address (never to a second lookup that a rebinding
DNS server could answer differently). Cloud metadata, link-local, unspecified, multicast and
reserved addresses are refused whatever the list says; loopback and private addresses only when
an address entry (an IP or a CIDR network) covers them — a name entry admits a name's public and
private addresses, never loopback. SQLite files are opened only inside an allowed folder.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore
import httpx
from sqlalchemy import URL, select
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.authz import authorize
from kuaishu.errors import NotFound, ValidationFailed
from kuaishu.security import audit
from kuaishu.security.models import AllowedDestination, DestinationKind
from kuaishu.store import storage

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata services (AWS/GCP/Azure/OpenStack, Alibaba Cloud, Tencent/Huawei via 169.254).
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254")
)
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433, "oracle": 1521}
# Driver options a database URL may carry; the rest can name server files (sslkey, passfile,
# service) or another host (host, hostaddr).
URL_OPTIONS = frozenset({"sslmode", "application_name", "connect_timeout", "charset"})


class EgressRefused(ValidationFailed):
    """A destination the allow list does not admit."""

    code = "egress_not_allowed"
    message = "“{host}”不在平台允许访问的地址名单上，请联系平台运营者添加。"


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _normal(address: IPAddress) -> IPAddress:
    """An IPv4 address carried inside IPv6 (mapped, 6to4, NAT64) is judged as that address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return inner
    return address


def never(address: IPAddress) -> bool:
    """Addresses refused whatever the allow list says."""
    return (
        address in METADATA
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    )


@dataclass(frozen=True)
class AllowList:
    """The operator's entries, read once for a load or a delivery."""

    names: tuple[tuple[str, int | None], ...] = ()
    networks: tuple[tuple[IPNetwork, int | None], ...] = ()
    folders: tuple[Path, ...] = ()

    def _named(self, host: str, port: int) -> bool:
        for name, allowed_port in self.names:
            if allowed_port not in (None, port):
                continue
            if host == name or (name.startswith("*.") and host.endswith(name[1:])):
                return True
        return False

    def _covered(self, address: IPAddress, port: int) -> bool:
        return any(
            address in network and allowed_port in (None, port)
            for network, allowed_port in self.networks
        )

    def admits(self, host: str, port: int, address: IPAddress) -> bool:
        """Whether a connection to ``address`` (which ``host`` resolved to) is allowed."""
        address = _normal(address)
        if never(address):
            return False
        if self._covered(address, port):
            return True
        return self._named(host, port) and not address.is_loopback

    def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Every address ``host`` resolves to, each admitted; raises :class:`EgressRefused`."""
        name = host.strip("[]").rstrip(".").lower()
        if not name:
            raise EgressRefused(host="")
        try:
            found = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as error:
            raise ValidationFailed(
                "无法解析主机名“{host}”。", code="egress_unresolved", host=host
            ) from error
        resolved: list[IPAddress] = []
        for _family, _type, _proto, _canon, sockaddr in found:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if not self.admits(name, port, address):
                raise EgressRefused(host=host)
            if address not in resolved:
                resolved.append(address)
        if not resolved:
            raise EgressRefused(host=host)
        return resolved

    def check_host(self, host: str, port: int) -> None:
        """Refuse ``host`` now when the list cannot admit it: an address or a listed name passes
        without a lookup (its addresses are checked when a connection is made), any other name
        is resolved and checked."""
        name = host.strip("[]").rstrip(".").lower()
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            if not self._named(name, port):
                self.addresses(name, port)
            return
        if not self.admits(name, port, address):
            raise EgressRefused(host=host)

    def folder_file(self, path: str) -> Path:
        """``path`` resolved, when it lies inside an allowed folder; else :class:`EgressRefused`."""
        resolved = Path(path).expanduser().resolve()
        if not any(resolved.is_relative_to(folder) for folder in self.folders):
            raise ValidationFailed(
                "文件路径不在平台允许的目录中，不能使用；请联系平台运营者。",
                code="egress_path_not_allowed",
            )
        return resolved


def allow_list(session: Session) -> AllowList:
    """The allow list as it stands now."""
    names: list[tuple[str, int | None]] = []
    networks: list[tuple[IPNetwork, int | None]] = []
    folders: list[Path] = []
    for entry in session.scalars(select(AllowedDestination).order_by(AllowedDestination.id)):
        if entry.kind == DestinationKind.FOLDER:
            folders.append(Path(entry.value))
            continue
        network = as_network(entry.value)
        if network is None:
            names.append((entry.value, entry.port))
        else:
            networks.append((network, entry.port))
    return AllowList(names=tuple(names), networks=tuple(networks), folders=tuple(folders))


def as_network(value: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(value.strip("[]"), strict=False)
    except ValueError:
        return None


# HTTP ------------------------------------------------------------------------------------------


class _GuardedBackend(httpcore.SyncBackend):
    """Opens TCP connections only to admitted addresses of the requested host."""

    def __init__(self, allowed: AllowList) -> None:
        self.allowed = allowed

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.allowed.addresses(host, port)
        last: Exception | None = None
        for address in addresses:  # connect to what was checked, never to a second lookup
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as error:
                last = error
        assert last is not None
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise EgressRefused(host=path)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with every connection going through the allow list; no proxy from the
    environment (a proxy would connect on our behalf, unchecked)."""

    def __init__(self, allowed: AllowList) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_GuardedBackend(allowed),
        )


def http_client(
    allowed: AllowList, *, timeout: float, headers: dict[str, str] | None = None
) -> httpx.Client:
    """A client that reaches only allowed hosts and follows no redirect."""
    return httpx.Client(
        timeout=timeout,
        headers=headers,
        follow_redirects=False,
        trust_env=False,
        transport=GuardedTransport(allowed),
    )


def check_http_url(url: str, *, key: str = "url") -> str:
    """An http(s) URL with a host; anything else (``file://``, no host) is refused."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise _bad_url(key) from error
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise _bad_url(key)
    return url


def _bad_url(key: str) -> ValidationFailed:
    return ValidationFailed(
        "“{key}”应是以 http:// 或 https:// 开头的地址。", code="source_url_invalid", key=key
    )


# Databases -------------------------------------------------------------------------------------


def check_database_url(url: URL) -> None:
    """Refuse a database URL that names no server (a local socket), carries driver options that
    can name server files or other hosts, or is a SQLite URI rather than a file path."""
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise ValidationFailed("SQLite 来源须指定数据库文件路径。", code="source_url_invalid")
        return
    host = url.host or ""
    if not host or host.startswith("/") or "," in host:
        raise ValidationFailed(
            "数据库地址须写明主机名（不支持本机套接字或多个主机）。", code="source_url_invalid"
        )
    extra = sorted(set(url.query) - URL_OPTIONS)
    if extra:
        raise ValidationFailed(
            "数据库地址中不支持参数：{names}。",
            code="source_url_invalid",
            details={"options": extra},
            names="、".join(extra),
        )


def database_target(url: URL, allowed: AllowList) -> tuple[URL, dict[str, Any]]:
    """The URL to connect to and the driver arguments that pin the connection to a checked
    address: a SQLite file inside an allowed folder, or a server host the list admits."""
    check_database_url(url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(database=str(allowed.folder_file(str(url.database))), query={}), {}
    port = url.port or DEFAULT_PORTS.get(backend, 0)
    address = str(allowed.addresses(str(url.host), port)[0])
    if backend == "postgresql":  # libpq: connect to hostaddr, verify TLS against host
        return url, {"hostaddr": address}
    return url.set(host=address), {}


# The allow list itself -------------------------------------------------------------------------

_NAME = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)


def _entry_value(kind: DestinationKind, value: str) -> str:
    """The entry as stored: a host lower-cased, a network in its canonical form, a folder
    resolved; refuses what cannot be an entry."""
    value = value.strip()
    if kind == DestinationKind.FOLDER:
        folder = Path(value)
        root = storage.data_root()
        if not folder.is_absolute():
            raise ValidationFailed("目录须写绝对路径。", code="egress_entry_invalid")
        folder = folder.resolve()
        # Files under the data root stay refused at connect time even inside an allowed folder.
        if folder.is_relative_to(root):
            raise ValidationFailed(
                "平台自身的数据目录不能列入白名单。", code="egress_entry_invalid"
            )
        return str(folder)
    network = as_network(value)
    if network is not None:
        return str(network)
    name = value.lower().rstrip(".")
    if len(name) > 253 or not _NAME.match(name):
        raise ValidationFailed(
            "“{value}”不是有效的主机名、IP 地址或网段。", code="egress_entry_invalid", value=value
        )
    return name


def list_destinations(session: Session, *, actor: Actor) -> list[AllowedDestination]:
    authorize(actor, "egress.view")
    return list(session.scalars(select(AllowedDestination).order_by(AllowedDestination.id)))


def add_destination(
    session: Session,
    *,
    actor: Actor,
    kind: DestinationKind,
    value: str,
    port: int | None = None,
    note: str = "",
) -> AllowedDestination:
    """Put a host, network or folder on the allow list (recorded in the audit trail)."""
    decided = authorize(actor, "egress.manage")
    if port is not None and not 1 <= port <= 65535:
        raise ValidationFailed("端口应在 1 到 65535 之间。", code="egress_entry_invalid")
    stored = _entry_value(kind, value)
    entry = AllowedDestination(
        kind=kind,
        value=stored,
        port=None if kind == DestinationKind.FOLDER else port,
        note=note.strip()[:200],
        created_by=actor.user_id,
    )
    session.add(entry)
    session.flush()
    audit.record(
        session,
        actor,
        "egress.allow",
        target_type="allowed_destination",
        target_id=entry.id,
        details={"kind": str(kind), "value": stored, "port": entry.port, "note": entry.note},
        as_role=decided,
    )
    return entry


def remove_destination(session: Session, *, actor: Actor, destination_id: int) -> None:
    """Take an entry off the allow list (recorded in the audit trail)."""
    decided = authorize(actor, "egress.manage")
    entry = session.get(AllowedDestination, destination_id)
    if entry is None:
        raise NotFound("白名单条目不存在。", code="egress_entry_not_found")
    audit.record(
        session,
        actor,
        "egress.disallow",
        target_type="allowed_destination",
        target_id=entry.id,
        details={"kind": str(entry.kind), "value": entry.value, "port": entry.port},
        as_role=decided,
    )
    session.delete(entry)
