"""Making URLs and messages safe to show: no userinfo, no query string (presigned URLs carry credentials there).

>>> redact_url("https://cdn.example.com/v.mp4?X-Amz-Signature=secret")
'https://cdn.example.com/v.mp4?…'
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["redact_url"]


def redact_url(url: str | None) -> str:
    """A URL safe for messages and logs: no userinfo, no query string, no fragment.

    A stripped query string is shown as ``?…``.

    >>> redact_url("https://user:pw@cdn.example.com:8443/a/b.mp4?X-Amz-Signature=abc#frag")
    'https://cdn.example.com:8443/a/b.mp4?…'
    """
    if url is None:
        return "<no URL>"
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    path = parts.path if len(parts.path) <= 200 else parts.path[:200] + "…"
    text = f"{parts.scheme}://{netloc}{path}" if parts.scheme else f"{netloc}{path}"
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text + ("?…" if parts.query else "")


def scrub_urls(text: str) -> str:
    """Remove query strings and userinfo from URLs inside a message (an exception's text, say).

    >>> scrub_urls("Max retries exceeded with url: /v.mp4?sig=s (Caused by https://u:pw@h.example/x)")
    'Max retries exceeded with url: /v.mp4?… (Caused by https://h.example/x)'
    """
    text = re.sub(r"\?[^\s'\"()<>]*", "?…", text)
    return re.sub(r"(://)[^/@\s'\"]+@", r"\1", text)
