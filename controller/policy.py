"""The target allowlist: which hosts a run may send load to. Pure: entries and targets in, a verdict out.

A platform team keeps load off production by listing where it may go (the chart's
`policy.allowedHosts` -> ConfigMap loadctl-policy, read by controller/k8s/policy_source.py); a test
author can narrow it further for themselves ($LOADCTL_ALLOWED_HOSTS, `allowed_hosts:` in the user
config file, controller/user_config.py). Every allowlist that is present must allow every host the
load goes to (RunPlan.hosts), so a source can only narrow the others, never widen them.

An entry is one of
    api.staging.example.com         that host name, any port
    api.staging.example.com:8443    that host name on that port only
    *.staging.example.com           any name *below* staging.example.com (one or more labels), not
                                    staging.example.com itself (list it too when you mean it)
    api-*.staging.example.com       `*` inside a label: any characters within that one label
    127.0.0.1   [::1]:8000          one address (IPv6 in brackets when a port follows)
    10.0.0.0/8   127.0.0.0/8:8000   a network (CIDR)

Why not fnmatch over the whole string: its `*` crosses dots and slashes, so `*.staging.example.com`
would allow `evil.com/x.staging.example.com`. Here both sides are first reduced to a host name
(what urlsplit and so the HTTP client connect to: `http://evil.com#.staging.example.com` is
evil.com), lowercased, IDNA-encoded, one trailing dot dropped, and matched label by label; a
label may only hold [a-z0-9_-] (and `*` in an entry), so nothing in a name can act as a pattern.
The last label of an entry must be literal and not numeric: `example.*` or `127.0.0.*` would not
anchor anything (write a CIDR for addresses). A name that cannot be reduced this way (a percent
sign, a backslash, a zone id) is never allowed. Port: the target's own, else its scheme's default
(http 80, https 443); a target with neither (grpc://host) matches port-less entries only.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from controller.errors import InputError

ENV_VAR = "LOADCTL_ALLOWED_HOSTS"  # the test author's own allowlist, comma separated
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_PATTERN_LABEL = re.compile(r"[a-z0-9_*-]{1,63}")
_DOTS = re.compile("[.\u3002\uff0e\uff61]")  # IDNA's label separators (ideographic full stop...)
_SEPARATORS = re.compile(r"[,\s]+")
_MAX_NAME = 253


@dataclass(frozen=True)
class Address:
    """Where a target sends its requests: a normalised host name or an IP address, and the port."""

    name: str | None  # lowercase ASCII labels joined by dots; None for an IP address
    ip: IPAddress | None
    port: int | None  # None: the scheme has no default port and none was given


@dataclass(frozen=True)
class Rule:
    """One allowlist entry, parsed."""

    entry: str  # as written, for messages
    labels: tuple[str, ...] = ()  # a host name pattern (empty for an address rule)
    network: IPNetwork | None = None
    port: int | None = None

    def allows(self, address: Address) -> bool:
        if self.port is not None and address.port != self.port:
            return False
        if self.network is not None:
            return address.ip is not None and address.ip in self.network
        return address.name is not None and _name_matches(self.labels, tuple(address.name.split(".")))


@dataclass(frozen=True)
class Allowlist:
    """The entries of one source: `source` and `field` say where they were written."""

    source: str  # e.g. "ConfigMap staging/loadctl-policy", "LOADCTL_ALLOWED_HOSTS", a file
    field: str | None  # e.g. "allowedHosts", "allowed_hosts"; None for the environment variable
    rules: tuple[Rule, ...]

    def allows(self, target: str) -> bool:
        try:
            address = target_address(target)
        except ValueError:
            return False  # what cannot be named cannot be allowed
        return any(rule.allows(address) for rule in self.rules)

    @property
    def entries(self) -> tuple[str, ...]:
        return tuple(rule.entry for rule in self.rules)


def split_entries(text: str) -> list[str]:
    """$LOADCTL_ALLOWED_HOSTS and the ConfigMap's allowedHosts: entries separated by commas,
    spaces or newlines (an entry holds none of them)."""
    return [entry for entry in _SEPARATORS.split(text) if entry]


def parse_allowlist(entries: Sequence[object], *, source: str, field: str | None) -> Allowlist | None:
    """The source's rules; None when it lists nothing (no policy: every host allowed, as before
    allowlists existed). A bad entry is an InputError naming the source and the entry's index."""
    rules = []
    for index, entry in enumerate(entries):
        where = f"{field}[{index}]" if field else f"entry {index + 1}"
        if not isinstance(entry, str):
            example = "e.g. '*.staging.example.com'"
            raise InputError(f"an entry must be a string, {example}", source=source, field=where)
        try:
            rules.append(parse_rule(entry))
        except ValueError as e:
            raise InputError(f"{entry!r}: {e}", source=source, field=where) from None
    return Allowlist(source, field, tuple(rules)) if rules else None


def parse_rule(entry: str) -> Rule:
    """One entry (see the module's docstring); ValueError saying what is wrong."""
    text = entry.strip()
    if not text:
        raise ValueError("empty entry")
    if "://" in text:
        raise ValueError(
            "an entry is a host, not a URL: drop the scheme (api.example.com, api.example.com:8443)"
        )
    host, port = _split_port(text)
    if "/" in host:
        try:
            return Rule(entry, network=ipaddress.ip_network(host, strict=True), port=port)
        except ValueError as e:
            raise ValueError(f"not a network like 10.0.0.0/8: {e}") from None
    ip = _ip(host)
    if ip is not None:
        return Rule(entry, network=ipaddress.ip_network(ip), port=port)
    labels = tuple(_normal_name(host, wildcards=True).split("."))
    if "*" in labels[-1] or labels[-1].isdigit():
        raise ValueError(
            "the last label must be a literal domain (write '*.example.com', and a CIDR like "
            "10.0.0.0/8 for addresses)"
        )
    return Rule(entry, labels=labels, port=port)


def target_address(target: str) -> Address:
    """Where a target (a base URL, or a bare host:port as gRPC clients take it) connects to;
    ValueError when it names no host that could be allowed."""
    if "://" in target:
        parts = urlsplit(target)
        host = parts.hostname or ""
        try:
            port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
        except ValueError:
            raise ValueError(f"{target!r} has an invalid port") from None
    else:
        host, port = _split_port(target)
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host:
        raise ValueError(f"{target!r} names no host")
    ip = _ip(host)
    if ip is not None:
        return Address(name=None, ip=ip, port=port)
    return Address(name=_normal_name(host, wildcards=False), ip=None, port=port)


def refusal(targets: Sequence[str], allowlists: Iterable[Allowlist]) -> InputError | None:
    """The first target some allowlist does not allow, as the one-line error naming that
    allowlist's source; None when every allowlist allows every target."""
    for allowlist in allowlists:
        for target in targets:
            if not allowlist.allows(target):
                shown = ", ".join(allowlist.entries)
                return InputError(
                    f"target {target} is not in the allowed hosts ({shown}); no load was sent",
                    source=allowlist.source,
                    field=allowlist.field,
                )
    return None


def _split_port(text: str) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port`, `a.b.c.d/n:port` -> (host, port); a bare IPv6 has no port."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("an IPv6 address in brackets is [addr] or [addr]:port")
        return host, _port(rest[1:]) if rest else None
    if text.count(":") != 1:
        return text, None  # no port, or a bare IPv6 address (ip_address checks it)
    host, _, port = text.partition(":")
    return host, _port(port)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:  # isdigit: no sign, no spaces, no '1_0'
        raise ValueError(f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def _ip(host: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return ip


def _normal_name(host: str, *, wildcards: bool) -> str:
    """Lowercase ASCII (IDNA) labels without the one trailing dot of a fully qualified name."""
    name = host[:-1] if _DOTS.fullmatch(host[-1:]) else host
    labels = _DOTS.split(name)
    label_form = _PATTERN_LABEL if wildcards else _LABEL
    normal = []
    for label in labels:
        if not label.isascii():
            try:
                label = label.encode("idna").decode("ascii")
            except UnicodeError:
                raise ValueError(f"{host!r} is not a valid international domain name") from None
        label = label.lower()
        if not label_form.fullmatch(label):
            raise ValueError(f"{host!r} is not a host name (labels of letters, digits, '-' and '_')")
        normal.append(label)
    joined = ".".join(normal)
    if len(joined) > _MAX_NAME:
        raise ValueError(f"a host name has at most {_MAX_NAME} characters")
    return joined


def _name_matches(pattern: tuple[str, ...], labels: tuple[str, ...]) -> bool:
    """A leading `*` label stands for one or more labels; any other `*` stays within its label."""
    if pattern[0] == "*" and len(pattern) > 1:
        suffix = pattern[1:]
        return len(labels) > len(suffix) and _labels_match(suffix, labels[-len(suffix) :])
    return len(labels) == len(pattern) and _labels_match(pattern, labels)


def _labels_match(pattern: Sequence[str], labels: Sequence[str]) -> bool:
    # fnmatch is safe here: labels hold only [a-z0-9_-] and patterns [a-z0-9_*-], so `*` is the
    # only special character (no `?`, no `[...]`) and it cannot cross a dot.
    return all(fnmatchcase(label, part) for part, label in zip(pattern, labels, strict=True))
