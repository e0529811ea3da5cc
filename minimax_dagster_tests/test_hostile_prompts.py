"""Prompt text is data (issue 13.3): whatever a prompt dataset or the API puts in a prompt, an id, an error or a
template name shows literally in the Markdown metadata, and no image, link, emphasis, code, heading, HTML or table
break can come from it.

Dagster's UI renders ``MetadataValue.md`` with react-markdown: CommonMark plus GFM (remark-gfm). Here the Markdown
is rendered by markdown-it-py, a CommonMark implementation, with GFM tables and strikethrough and with raw HTML
ON (stricter than the UI: an unescaped tag would come out as a tag). GFM's bare-URL autolinks are not in
markdown-it; remark-gfm finds them with two regular expressions on the rendered text (mdast-util-gfm-autolink-
literal, as shipped in dagster-webserver 1.13's UI bundle), which are applied below to every text the renderer
produced. Pure Python: no browser, no network.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from minimax_dagster.metadata.links import VideoLinks
from minimax_dagster.metadata.markdown import (
    ID_CHARS,
    PROMPT_CHARS,
    WORD_JOINER,
    ZERO_WIDTH_SPACE,
    escape_markdown,
)
from minimax_dagster.metadata.tables import materialization_metadata, templates_table, video_table
from minimax_dagster.production.manifest import ManifestEntry

HOSTILE = [
    "![x](http://evil.example/x.png)",
    "![x][ref]\n\n[ref]: http://evil.example/ref.png",
    "[a](javascript:alert(1))",
    "[a]( javascript:alert(1) 'title')",
    "<img src=http://evil.example/y.png onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<http://evil.example/auto>",
    "<mail@evil.example>",
    "http://x",
    "see https://evil.example/path?q=1 now",
    "www.evil.example",
    "WWW.EVIL.EXAMPLE and HTTPS://EVIL.EXAMPLE",
    "write to a@evil.example",
    "a | b || c",
    "|---|---|",
    "`code` ``double `` ```fence```",
    "```\nfenced block\n```",
    "*em* **strong** _em_ __strong__ ***both***",
    "~~gone~~ ~one~",
    "# heading",
    "## heading ##",
    "heading\n===",
    "- item\n* item\n+ item\n1. item\n2) item",
    "> quote",
    "- [ ] task\n- [x] done",
    "---",
    "    indented code",
    "\ttabbed code",
    "&lt;b&gt; &amp; &#x3C;img&#x3E; &copy;",
    "back\\slash \\* \\\\ trailing\\",
    "hard  \nbreak",
    "footnote[^1]\n\n[^1]: note",
    "$math$ $$display$$",
    ":emoji: @mention #123",
    "line\rcarriage\r\nboth\u2028separator\u2029paragraph\x85next\vvt\fff",
    "nul\x00bell\x07esc\x1b[31mred",
    "bidi \u202eevil.exe\u202c text",
    "{curly} [square] (round) <angle>",
    "^caret^ %percent% =equal= +plus+ ?question? !bang! 'single' \"double\" ;semi; ,comma,",
    "\\![not an image](http://x.example)",
]


class _Html(HTMLParser):
    """The tags, attributes and text nodes of rendered HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def render(markdown: str) -> _Html:
    parsed = _Html()
    parsed.feed(MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown))
    return parsed


#: remark-gfm's bare-URL autolinks (http(s)://, www., e-mail), found in text after escapes are resolved.
GFM_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.IGNORECASE | re.ASCII)
GFM_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)", re.ASCII)


def shown(text: str) -> str:
    """What a person should see: the text on one line, runs of blanks as one space, controls as U+FFFD."""
    one_line = re.sub(r"\r\n|[\r\n\v\f\x85\u2028\u2029]", " ", text)
    visible = re.sub(r"[\x00-\x08\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]", "\ufffd", one_line)
    return re.sub(r"[ \t]+", " ", visible).strip()


def invisible_removed(text: str) -> str:
    return text.replace(WORD_JOINER, "").replace(ZERO_WIDTH_SPACE, "")


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_text_renders_as_itself_and_nothing_else(text):
    html = render(escape_markdown(text))
    assert [tag for tag, _ in html.tags] == ["p"], f"markup came from {text!r}: {html.tags}"
    rendered = "".join(html.texts).strip()
    assert invisible_removed(rendered) == shown(text)
    assert not GFM_URL.search(rendered) and not GFM_EMAIL.search(rendered), f"GFM would autolink {rendered!r}"


@pytest.mark.parametrize("text", HOSTILE)
def test_every_markdown_significant_character_is_escaped(text):
    escaped = escape_markdown(text)
    i = 0
    while i < len(escaped):
        if escaped[i] == "\\":
            assert i + 1 < len(escaped) and re.match(r"[!-/:-@\[-`{-~]", escaped[i + 1]), escaped
            i += 2
            continue
        assert not re.match(r"[!-/:-@\[-`{-~]", escaped[i]), f"unescaped {escaped[i]!r} in {escaped!r}"
        assert escaped[i] not in "\r\n", "a line break would end the table row"
        i += 1


def _entries() -> list[ManifestEntry]:
    out = []
    for n, text in enumerate(HOSTILE):
        ok = n % 4 != 3
        out.append(
            ManifestEntry(
                id=f"{n}{text[:12]}",
                prompt=text,
                template_id="1",
                status="generated" if ok else "failed",
                error=None if ok else f"moderated: {text}",
                s3_uri=f"s3://media/minimax/videos/v{n}.mp4" if ok else None,
                width=1280,
                height=720,
                duration_s=6,
                bytes=1000,
                recommended_templates=[{"id": f"{n}", "name": text[:30]}],
            )
        )
    return out


def test_the_table_keeps_its_shape_and_shows_every_cell_literally():
    entries = _entries()
    links = VideoLinks(endpoint_url="http://127.0.0.1:9000")
    html = render(video_table(entries, links=links))
    tags = [tag for tag, _ in html.tags]
    assert tags.count("table") == 1 and tags.count("tr") == len(entries) + 1
    assert tags.count("th") == 8 and tags.count("td") == 8 * len(entries)
    allowed = {"p", "table", "thead", "tbody", "tr", "th", "td", "a"}
    assert set(tags) <= allowed, f"markup from the data: {set(tags) - allowed}"
    hrefs = [attrs["href"] for tag, attrs in html.tags if tag == "a"]
    assert hrefs == [links.url(e.s3_uri) for e in entries if e.ok]
    rendered = invisible_removed("".join(html.texts))
    for e in entries:
        assert shown(e.id)[: ID_CHARS - 1] in rendered
        assert shown(e.prompt)[: PROMPT_CHARS - 1] in rendered
    for text in html.texts:
        assert not GFM_URL.search(text) and not GFM_EMAIL.search(text), f"GFM would autolink {text!r}"


def test_only_inline_image_data_becomes_a_picture():
    entry = _entries()[0]
    remote = {entry.id: "http://evil.example/poster.png"}
    assert "<img" not in MarkdownIt("commonmark").enable("table").render(
        video_table([entry], thumbnails=remote)
    )
    inline = {entry.id: "data:image/jpeg;base64,AAAA"}
    html = render(video_table([entry], thumbnails=inline))
    assert [attrs["src"] for tag, attrs in html.tags if tag == "img"] == ["data:image/jpeg;base64,AAAA"]


def test_template_names_from_the_api_are_escaped_too():
    html = render(templates_table({("42", "![t](http://evil.example/t.png) *x*"): 3}))
    assert {tag for tag, _ in html.tags} <= {"table", "thead", "tbody", "tr", "th", "td"}
    assert "![t](http://evil.example/t.png) *x*" in invisible_removed("".join(html.texts))


def test_no_markdown_value_of_the_metadata_carries_markup_from_the_data():
    md = materialization_metadata(_entries(), links=VideoLinks(region="eu-west-1"))
    for key in ("videos", "recommended_templates"):
        html = render(md[key].value)
        assert {tag for tag, _ in html.tags} <= {"p", "table", "thead", "tbody", "tr", "th", "td", "a"}, key
        assert all(
            attrs["href"].startswith("https://s3.console.aws.amazon.com/")
            for t, attrs in html.tags
            if t == "a"
        )
