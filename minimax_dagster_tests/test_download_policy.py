"""The download policy's URL rules (minimax_dagster.storage.policy) and URL redaction (storage.redact)."""

from __future__ import annotations

import pytest

from minimax_dagster.storage import DownloadPolicy, DownloadRefused, redact_url

POLICY = DownloadPolicy(allowed_hosts=("cdn.example.com", "*.oss.example.net", "http://127.0.0.1:8765"))


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.com/v.mp4",
        "https://CDN.example.com./v.mp4?sig=1",
        "https://cdn.example.com:443/v.mp4",
        "https://a.oss.example.net/v.mp4",
        "https://a.b.oss.example.net/v.mp4",
        "http://127.0.0.1:8765/v.mp4",
    ],
)
def test_policy_allows(url: str) -> None:
    POLICY.check_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://cdn.example.com/v.mp4", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://cdn.example.com/", "scheme"),
        ("//cdn.example.com/v.mp4", "scheme ''"),
        ("http://evil.example/v.mp4", "not in allowed_hosts"),
        ("https://evil.example/v.mp4", "not in allowed_hosts"),
        ("https://user:pw@cdn.example.com/v.mp4", "userinfo"),
        ("https://cdn.example.com@evil.example/v.mp4", "userinfo"),
        ("http://cdn.example.com/v.mp4", "plain http"),
        ("http://a.oss.example.net/v.mp4", "plain http"),
        ("https://cdn.example.com:8443/v.mp4", "port 8443"),
        ("https://oss.example.net/v.mp4", "not in allowed_hosts"),
        ("https://evil-oss.example.net/v.mp4", "not in allowed_hosts"),
        ("https://cdn.example.com.evil.example/v.mp4", "not in allowed_hosts"),
        ("https://127.0.0.1:8765/v.mp4", "not in allowed_hosts"),
        ("http://127.0.0.1:8766/v.mp4", "not in allowed_hosts"),
        ("http://localhost:8765/v.mp4", "not in allowed_hosts"),
        ("https://cdn.example.com\\@evil.example/", "backslash"),
        ("https://cdn.example.com/v.mp4\r\nX: y", "control"),
        ("https://cdn.example.com:99999/v.mp4", "does not parse"),
        ("https:///v.mp4", "no host"),
        ("", "non-empty"),
    ],
)
def test_policy_refuses(url: str, reason: str) -> None:
    with pytest.raises(DownloadRefused, match=reason) as info:
        POLICY.check_url(url)
    assert isinstance(info.value, ValueError)
    assert "pw@" not in str(info.value)


@pytest.mark.parametrize(
    "entry",
    [
        "*.com",
        "*",
        "http://*.example.com",
        "https://cdn.example.com/path",
        "http://u@host:1",
        "a b",
        "",
        " x.com",
    ],
)
def test_policy_rejects_bad_entries(entry: str) -> None:
    with pytest.raises(ValueError, match="allowed_hosts"):
        DownloadPolicy(allowed_hosts=(entry,))


def test_policy_needs_hosts_and_is_frozen() -> None:
    with pytest.raises(ValueError):
        DownloadPolicy(allowed_hosts=())
    with pytest.raises(ValueError):
        POLICY.max_bytes = 1  # type: ignore[misc]
    assert POLICY.max_bytes == 8 * 1024**3
    assert POLICY.max_redirects == 5


def test_redact_url() -> None:
    assert redact_url("https://u:p@h.example/a?X-Amz-Signature=s#f") == "https://h.example/a?…"
    assert redact_url("http://[::1]:8080/x") == "http://[::1]:8080/x"
    assert redact_url("http://h:99999/") == "<unparseable URL>"
