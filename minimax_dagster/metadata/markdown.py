"""Text from datasets and the API made safe for Dagster's Markdown, and the units a person reads.

Everything that comes from a dataset or the API (prompt, id, error text) goes through :func:`escape_markdown`
and shows literally: no image, link, emphasis, code, heading, HTML or table break can come from it.

>>> print(escape_markdown("A *fox*"))
A \\*fox\\*
>>> human_bytes(2_500_000).replace("\xa0", " "), human_seconds(75).replace("\xa0", " ")
('2.4 MiB', '75.0 s')
"""

from __future__ import annotations

import re

#: Problems, failures and paid prompts listed in a failure's text or a check's metadata; the rest are counted.
MAX_LISTED = 50


#: Prompt characters shown in the table (the manifest has the whole prompt).
PROMPT_CHARS = 120


#: Id and error characters shown in the table.
ID_CHARS = 40


ERROR_CHARS = 160


#: Longer runs without a space get a break opportunity (U+200B) this often, so no cell widens the table.
WORD_CHARS = 24


# Every ASCII punctuation character: CommonMark renders each of them, backslash-escaped, as itself.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


_LINE_BREAK = re.compile(r"\s*(?:\r\n|[\r\n\v\f\x85\u2028\u2029])\s*")


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")  # and the bidi overrides


_SPACES = re.compile(r"[ \t]+")


# GFM turns www., http(s):// and e-mail addresses in plain text into links even when escaped (remark-gfm
# finds them in the text after the escapes are gone). A word joiner (U+2060, invisible) breaks each pattern.
_AUTOLINK = re.compile(r"(?i)(https?(?=:)|www(?=\.)|@)")


_NBSP = "\u00a0"  # keeps "1.3 MiB" on one line in a narrow column


#: Invisible; breaks a bare URL so that GFM does not make it a link.
WORD_JOINER = "\u2060"


#: Invisible; a place where a long word may wrap.
ZERO_WIDTH_SPACE = "\u200b"


def escape_markdown(text: str | None, max_chars: int | None = None, *, break_every: int | None = None) -> str:
    r"""``text`` as Markdown that renders as exactly that text, on one line, at most ``max_chars`` long.

    Line breaks and tabs become spaces, control and bidi-override characters become U+FFFD, every ASCII
    punctuation character is backslash-escaped (CommonMark renders an escaped punctuation character as itself,
    in any context), and GFM's bare-URL autolinks are broken with an invisible word joiner (U+2060).
    ``break_every``: runs of that many characters without a space get an invisible break opportunity
    (U+200B), so that a long id or URL wraps inside its table column instead of widening the table.

    >>> print(escape_markdown("![x](img.png) *hi* | <b> &lt;"))
    \!\[x\]\(img\.png\) \*hi\* \| \<b\> \&lt\;
    >>> escape_markdown("see https://x.example").replace(WORD_JOINER, "<WJ>")
    'see https<WJ>\\:\\/\\/x\\.example'
    >>> print(escape_markdown("line one\nline two", max_chars=12))
    line one li…
    >>> escape_markdown("abcdefgh", break_every=3).replace(ZERO_WIDTH_SPACE, "<ZWSP>")
    'abc<ZWSP>def<ZWSP>gh'
    """
    clean = _LINE_BREAK.sub(" ", text or "")
    clean = _SPACES.sub(" ", _CONTROL.sub("\ufffd", clean)).strip()
    if max_chars is not None and len(clean) > max_chars:
        clean = clean[: max(max_chars - 1, 0)].rstrip() + "…"
    if break_every:
        clean = re.sub(rf"\S{{{break_every}}}(?=\S)", lambda m: m.group(0) + ZERO_WIDTH_SPACE, clean)
    return _PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(lambda m: m.group(1) + WORD_JOINER, clean))


def human_bytes(n: int | None) -> str:
    """A byte count as a person reads it (binary units).

    >>> human_bytes(23_660_581), human_bytes(512), human_bytes(None)
    ('22.6 MiB', '512 bytes', '')
    """
    if n is None:
        return ""
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def human_seconds(seconds: float | None) -> str:
    """A duration with its unit: seconds below two minutes, then minutes and seconds.

    >>> human_seconds(1.0254), human_seconds(17.5), human_seconds(754), human_seconds(None)
    ('1.03 s', '17.5 s', '12 min 34 s', '')
    """
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"
