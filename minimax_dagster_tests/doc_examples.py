"""The examples of the README and the documentation site (``docs/``), read from their Markdown fences.

A fence's info string says how the suite runs it (``test_doc_examples.py``); its ``title`` is also what the
site shows above the block:

* ``python``: run as a script (``__main__``) in a fresh interpreter, with the simulator and the S3 server in
  its environment (``USEAPI_TOKEN``, ``MINIMAX_BASE_URL``, ``MINIMAX_BUCKET``, ...);
* ``yaml title="defs.yaml"``: loaded by ``MiniMaxVideoComponent`` as ``dg`` loads a defs folder;
* ``yaml title="run config"``: the run config of a video asset's run, executed against the simulator;
* ``yaml title="dagster.yaml"``: loaded as a Dagster instance's settings;
* ``title="not run: <why>"`` (either language): only checked for syntax;
* ``bash``: each command is listed in ``docs/commands.md`` with what runs it.

>>> [(e.lang, e.title, e.line) for e in fences("x\\n```python title=\\"a b\\"\\nprint(1)\\n```\\n", "t.md")]
[('python', 'a b', 3)]
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.M | re.S)
TITLE = re.compile(r'title="([^"]*)"')
NOT_RUN = "not run:"


@dataclass(frozen=True)
class Example:
    """One fenced block: where it is, its language, its title and its code."""

    path: str
    line: int
    lang: str
    title: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def runs(self) -> bool:
        return not self.title.startswith(NOT_RUN)


def fences(text: str, path: str) -> list[Example]:
    """Every fenced block of a Markdown ``text`` (``line``: the line of its first code line)."""
    found = []
    for match in FENCE.finditer(text):
        info = match["info"].strip()
        title = TITLE.search(info)
        code = textwrap.dedent(match["body"]) if match["indent"] else match["body"]
        line = text.count("\n", 0, match.start("body")) + 1
        lang = info.split(" ", 1)[0] if info else ""
        found.append(Example(path, line, lang, title[1] if title else "", code))
    return found


def documents() -> list[Path]:
    """The README and every page of the site."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def examples(*langs: str) -> list[Example]:
    """Every fence in those languages, in reading order."""
    return [
        e
        for doc in documents()
        for e in fences(doc.read_text(encoding="utf-8"), str(doc.relative_to(REPO)))
        if e.lang in langs
    ]


def shell_commands(example: Example) -> list[str]:
    """The commands of a ``bash`` fence: one per line (continuations joined), comments and blanks left out.

    >>> shell_commands(Example("x", 1, "bash", "", "make demo   # go\\nls \\\\\\n  -l\\n\\n"))
    ['make demo', 'ls -l']
    """
    joined = re.sub(r"\\\n\s*", "", example.code)
    commands = []
    for raw in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", raw).strip()
        if line and not line.startswith("#"):
            commands.append(re.sub(r"\s+", " ", line))
    return commands


def doc_environment(simulator: Any, s3_endpoint: str, bucket: str) -> dict[str, str]:
    """What the documents' examples read from the environment, pointed at the simulator and the S3 server."""
    from minimax_dagster_tests.conftest import S3_KEY_ID, S3_SECRET

    return {
        "USEAPI_TOKEN": simulator.token,
        "MINIMAX_BASE_URL": simulator.base_url,
        "MINIMAX_ALLOWED_DOWNLOAD_HOSTS": simulator.origin,
        "MINIMAX_BUCKET": bucket,
        "MINIMAX_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": S3_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
