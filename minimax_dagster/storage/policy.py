"""The download policy: which URLs may be fetched (the SSRF rules), how big a body may be, the HTTP timeouts.

>>> from minimax_dagster.storage import DownloadPolicy
>>> DownloadPolicy(allowed_hosts=("cdn.example.com",)).max_redirects
5
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

import urllib3.util
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from minimax_dagster.storage.config import DEFAULT_MAX_BYTES
from minimax_dagster.storage.errors import DownloadRefused
from minimax_dagster.storage.redact import scrub_urls

__all__ = ["DownloadPolicy"]

_MAX_URL_CHARS = 8192
_HOSTNAME_RE = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclasses.dataclass(frozen=True)
class _HostRule:
    kind: Literal["host", "suffix", "origin"]
    host: str
    scheme: str = "https"
    port: int | None = None

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if self.kind == "origin":
            return (scheme, host, port) == (self.scheme, self.host, self.port)
        if scheme != "https" or port != 443:
            return False
        return host == self.host if self.kind == "host" else host.endswith("." + self.host)

    def matches_host(self, host: str) -> bool:
        if self.kind == "suffix":
            return host.endswith("." + self.host)
        return host == self.host


def _parse_host_entry(entry: str) -> _HostRule:
    hint = (
        "entries are a hostname ('cdn.example.com'), a wildcard ('*.example.com') or an explicit "
        "origin ('http://127.0.0.1:8765')"
    )
    if not isinstance(entry, str) or not entry or entry != entry.strip():
        raise ValueError(f"allowed_hosts entry {entry!r} is invalid; {hint}")
    text = entry.lower()
    if "://" in text:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"allowed_hosts entry {entry!r} is invalid ({exc}); {hint}") from None
        if (
            parts.scheme not in _DEFAULT_PORTS
            or not parts.hostname
            or "@" in parts.netloc
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or "*" in parts.netloc
        ):
            raise ValueError(f"allowed_hosts entry {entry!r} is not a plain http(s) origin; {hint}")
        return _HostRule(
            "origin",
            _normalize_host(parts.hostname),
            parts.scheme,
            port if port is not None else _DEFAULT_PORTS[parts.scheme],
        )
    if text.startswith("*."):
        suffix = text[2:].rstrip(".")
        if "." not in suffix or not _HOSTNAME_RE.fullmatch(suffix):
            raise ValueError(
                f"allowed_hosts entry {entry!r} is too broad or invalid: a wildcard needs at least "
                f"two labels after '*.' ('*.example.com'); {hint}"
            )
        return _HostRule("suffix", suffix)
    host = text.rstrip(".")
    if not _HOSTNAME_RE.fullmatch(host):
        raise ValueError(f"allowed_hosts entry {entry!r} is not a valid hostname; {hint}")
    return _HostRule("host", host)


def _normalize_host(host: str) -> str:
    host = host.lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host


class DownloadPolicy(BaseModel):
    """Which URLs may be downloaded, how big the body may be, and the HTTP timeouts.

    ``allowed_hosts`` entries are a bare hostname or ``*.suffix`` wildcard (https on port 443
    only; the wildcard matches subdomains, not the suffix itself), or an explicit origin such as
    ``http://127.0.0.1:8765`` (exactly that scheme, host and port: the way to allow plain http).

    >>> policy = DownloadPolicy(allowed_hosts=("*.cdn.example.com", "http://127.0.0.1:8765"))
    >>> policy.check_url("https://eu.cdn.example.com/v.mp4?sig=1")
    >>> policy.check_url("http://127.0.0.1:8765/v.mp4")
    >>> policy.check_url("http://eu.cdn.example.com/v.mp4")
    Traceback (most recent call last):
    ...
    minimax_dagster.storage.errors.DownloadRefused: download refused for http://eu.cdn.example.com/v.mp4: plain http to 'eu.cdn.example.com' is refused; list the origin 'http://eu.cdn.example.com:80' in allowed_hosts to allow it
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_hosts: tuple[str, ...] = Field(min_length=1)
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    max_redirects: int = Field(default=5, ge=0, le=20)

    _rules: tuple[_HostRule, ...] = PrivateAttr(default=())

    @field_validator("allowed_hosts")
    @classmethod
    def _validate_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            _parse_host_entry(entry)
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._rules = tuple(_parse_host_entry(e) for e in self.allowed_hosts)

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect_timeout, read_timeout)`` as ``requests`` takes it.

        >>> DownloadPolicy(allowed_hosts=("cdn.example.com",), read_timeout=5).timeout
        (10.0, 5.0)
        """
        return (self.connect_timeout, self.read_timeout)

    def check_url(self, url: str) -> None:
        """Raise ``DownloadRefused`` unless ``url`` may be fetched under this policy.

        >>> DownloadPolicy(allowed_hosts=("cdn.example.com",)).check_url("https://cdn.example.com/a")
        """
        if not isinstance(url, str) or not url:
            raise DownloadRefused(str(url), "URL must be a non-empty string")
        if len(url) > _MAX_URL_CHARS:
            raise DownloadRefused(url, f"URL longer than {_MAX_URL_CHARS} characters")
        if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or "\\" in url:
            raise DownloadRefused(url, "URL contains whitespace, control characters or backslashes")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise DownloadRefused(url, f"URL does not parse ({scrub_urls(str(exc))})") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise DownloadRefused(
                url, f"scheme {scheme!r} is not allowed; only https (or http to a listed origin)"
            )
        if "@" in parts.netloc:
            raise DownloadRefused(url, "credentials (userinfo) in the URL are not allowed")
        if not parts.hostname:
            raise DownloadRefused(url, "URL has no host")
        host = _normalize_host(parts.hostname)
        if not host.isascii():
            raise DownloadRefused(url, "non-ASCII host names are not allowed (use the punycode form)")
        self._check_parsers_agree(url, parts, host, port)
        effective_port = port if port is not None else _DEFAULT_PORTS[scheme]
        if any(rule.matches(scheme, host, effective_port) for rule in self._rules):
            return
        if any(rule.kind != "origin" and rule.matches_host(host) for rule in self._rules):
            if scheme == "http":
                raise DownloadRefused(
                    url,
                    f"plain http to {host!r} is refused; list the origin "
                    f"'http://{host}:{effective_port}' in allowed_hosts to allow it",
                )
            raise DownloadRefused(
                url, f"port {effective_port} on {host!r} is refused; list the origin explicitly to allow it"
            )
        raise DownloadRefused(
            url, f"host {host!r} (scheme {scheme}, port {effective_port}) is not in allowed_hosts"
        )

    @staticmethod
    def _check_parsers_agree(url: str, parts: SplitResult, host: str, port: int | None) -> None:
        """Refuse URLs that urllib.parse and urllib3 (which requests uses) read differently."""
        try:
            parsed = urllib3.util.parse_url(url)
        except Exception:
            raise DownloadRefused(url, "URL does not parse") from None
        other_host = _normalize_host(parsed.host or "")
        if other_host != host or parsed.port != port or (parsed.scheme or "").lower() != parts.scheme.lower():
            raise DownloadRefused(url, "URL parses ambiguously")
