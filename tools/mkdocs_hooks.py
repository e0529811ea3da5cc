"""MkDocs hook (``mkdocs.yml``): the site's home page is the README, its links to ``docs/`` made relative to
the site, so the README stays the one text of what the project is and how to start; ``<!-- asset-options -->``
in a page becomes the table of the video asset's options, made from their one description
(:class:`minimax_dagster.assets.options.AssetOptions`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markdown import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.structure.files import File, Files

README = Path(__file__).resolve().parents[1] / "README.md"

#: Where a page shows the table of the asset's options.
OPTIONS_MARKER = "<!-- asset-options -->"


def home_page(readme: str) -> str:
    """The README as the site's ``index.md``.

    >>> home_page("[Failures](docs/FAULTS.md) and [x](https://e.org/docs/a.md)")
    '[Failures](FAULTS.md) and [x](https://e.org/docs/a.md)'
    """
    return readme.replace("](docs/", "](")


def options_table() -> str:
    """The asset's options as a Markdown table: name, default, meaning.

    >>> options_table().splitlines()[2].startswith("| `bucket` | — | S3 bucket")
    True
    """
    from minimax_dagster.assets.options import option_descriptions

    lines = ["| option | default | meaning |", "|---|---|---|"]
    for name, default, description in option_descriptions():
        shown = "—" if default is None else f"`{default!r}`"
        meaning = description.replace("|", "\\|")
        lines.append(f"| `{name}` | {shown} | {meaning} |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    return markdown.replace(OPTIONS_MARKER, options_table()) if OPTIONS_MARKER in markdown else markdown


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "index.md", content=home_page(README.read_text(encoding="utf-8"))))
    return files


class _DoctestFences(Preprocessor):
    """Docstrings hold doctest examples (``>>>`` and the output after it, up to a blank line): shown as code."""

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        inside = False
        for line in lines:
            starts = line.lstrip().startswith(">>>")
            if starts and not inside:
                out += ["", "```pycon"]
                inside = True
            elif inside and not line.strip():
                out.append("```")
                inside = False
            out.append(line.strip() if inside else line)
        return [*out, "```"] if inside else out


class DoctestExtension(Extension):
    def extendMarkdown(self, md: Any) -> None:
        md.preprocessors.register(_DoctestFences(md), "doctest_fences", 29)


def on_config(config: Any) -> Any:
    config.markdown_extensions.append(DoctestExtension())
    return config
