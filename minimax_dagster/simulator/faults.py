"""Fault injection: parsing of fault specs and the set of faults applied to one create.

Syntax (identical in the three places a fault can come from)::

    name[=arg][,name2[=arg2]...]

* server-wide: ``SimulatorConfig.faults`` / ``MiniMaxSimulator.set_faults([...])`` / ``POST /_sim/faults``
  (each list item may itself hold several comma-separated faults);
* per request: header ``X-Sim-Fault: drop_after=3,cdn_cut=65536``;
* in the prompt: ``"A red car [sim:fail]"`` (the marker stays in the prompt, so it works through any client;
  several markers, or several faults in one marker, are allowed).

``http502_queued`` / ``http504_queued`` model what useapi.net's documentation warns about (POST accounts:
"the MiniMax website is too busy and responds with 502 or 504 while still accepting jobs into the internal
queue"): the create is answered 502/504, yet a job was made on the account (and billed). useapi's side does not
know it, so it is not in GET scheduler/available, does not hold one of useapi's maxJobs slots and gets no
replyUrl callback; it is found through GET videos/?account=... with its prompt as ``desc``.

When the same fault name comes from several places, the prompt marker wins over the header, which wins over
the server-wide list. Stream events are numbered from 1 (``created``) and heartbeats are NOT counted, see the
event table in the package docstring.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = [
    "FAULT_NAMES",
    "PROMPT_MARKER",
    "Fault",
    "FaultSet",
    "parse_faults",
    "prompt_faults",
    "strip_markers",
]

#: ``[sim:...]`` markers inside a prompt.
PROMPT_MARKER = re.compile(r"\[sim:([^\]]*)\]")


def _int(minimum: int) -> Callable[[str], int]:
    def conv(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise ValueError(f"must be >= {minimum}")
        return value

    return conv


def _float_pos(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be > 0")
    return value


def _float_nonneg(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError("must be >= 0")
    return value


def _moderation_status(text: str) -> int:
    value = int(text)
    if value not in (5, 7, 14):
        raise ValueError("must be 5, 7 or 14")
    return value


def _cdn_cut(text: str) -> tuple[int, int]:
    # "BYTES" (cut the first response only) or "BYTES:N" (cut the first N responses; N=0 = every response).
    size, _, count = text.partition(":")
    return _int(0)(size), _int(0)(count) if count else 1


# name -> (argument converter or None when the fault takes no argument, default when the argument is omitted,
#          one-line description). A default of ... means the argument is required.
_SPECS: dict[str, tuple[object, object, str]] = {
    "drop_after": (_int(0), ..., "close the stream connection abruptly after event K"),
    "stall_after": (_int(0), ..., "send nothing more on the stream after event K; the socket stays open"),
    "malformed_at": (_int(1), ..., "event K is sent as invalid JSON; the stream then continues"),
    "oversized_after": (
        _int(0),
        ...,
        "after event K, an unterminated data line of 2 MiB (over the client's 1 MiB cap), then the connection "
        "is closed; the job carries on",
    ),
    "fail": (None, None, "the video fails: status 3, errCode/errMsg in the final events"),
    "moderate": (_moderation_status, 7, "moderated outcome with status 5, 7 or 14; later GET answers 404"),
    "busy": (_int(1), 1, "the first N creates carrying this fault are answered 429"),
    "http502": (_int(1), 1, "the first N creates carrying this fault are answered 502"),
    "http504": (_int(1), 1, "the first N creates carrying this fault are answered 504"),
    "http502_queued": (
        _int(1),
        1,
        "the first N creates carrying this fault are answered 502, but the job was queued on the account "
        "anyway: not in scheduler/available, yet it runs, completes and is listed by GET videos/",
    ),
    "http504_queued": (
        _int(1),
        1,
        "like http502_queued, answered 504",
    ),
    "credits": (None, None, "create answered 412 (out of credits)"),
    "hold": (None, None, "create answered 596 (account on hold)"),
    "expired": (None, None, "create answered 402 (subscription expired)"),
    "moderated_prompt": (None, None, "create answered 422 (prompt refused by moderation)"),
    "cdn_cut": (_cdn_cut, ..., "CDN closes the video connection after BYTES body bytes (BYTES[:N])"),
    "cdn_slow": (_float_pos, ..., "throttle this video's CDN downloads to BPS bytes/s"),
    "no_finished": (None, None, "stream ends cleanly after the type-3 event without 'finished'"),
    "slow": (_float_nonneg, ..., "this job's generation takes SECONDS"),
}

FAULT_NAMES = frozenset(_SPECS)


@dataclass(frozen=True)
class Fault:
    """One parsed fault. ``arg`` is already converted (int, float, tuple or None).

    >>> Fault.parse("cdn_cut=10:2")[0].arg
    (10, 2)
    """

    name: str
    arg: object = None
    source: str = "header"  # "prompt" | "header" | "config"
    spec: str = ""  # the text it was parsed from, e.g. "busy=2" (used as the counting key)

    @classmethod
    def parse(cls, text: str, source: str = "header") -> list[Fault]:
        return parse_faults(text, source=source)

    def __str__(self) -> str:
        return self.spec or self.name


def parse_faults(text: str | Iterable[str] | None, source: str = "header") -> list[Fault]:
    """Parse ``"name[=arg],name2"`` (or a list of such strings). Raises ValueError naming the bad part.

    >>> [(f.name, f.arg) for f in parse_faults("http502_queued=2, fail")]
    [('http502_queued', 2), ('fail', None)]
    >>> parse_faults("drop_after")
    Traceback (most recent call last):
    ...
    ValueError: fault 'drop_after' needs an argument (drop_after=...)
    """
    if text is None:
        return []
    parts: list[str] = []
    if isinstance(text, str):
        parts = text.split(",")
    else:
        for item in text:
            if not isinstance(item, str):
                raise ValueError(f"fault specs must be strings, got {item!r}")
            parts.extend(item.split(","))
    faults: list[Fault] = []
    for raw in parts:
        part = raw.strip()
        if not part:
            continue
        name, has_arg, arg_text = part.partition("=")
        name = name.strip().lower()
        arg_text = arg_text.strip()
        if name not in _SPECS:
            raise ValueError(f"unknown fault {name!r} (known: {', '.join(sorted(_SPECS))})")
        conv, default, _ = _SPECS[name]
        if conv is None:
            if has_arg and arg_text:
                raise ValueError(f"fault {name!r} takes no argument")
            arg = None
        elif not has_arg or not arg_text:
            if default is ...:
                raise ValueError(f"fault {name!r} needs an argument ({name}=...)")
            arg = default
        else:
            try:
                arg = conv(arg_text)  # type: ignore[operator]
            except ValueError as exc:
                raise ValueError(f"bad argument for fault {name!r}: {arg_text!r} ({exc})") from None
        faults.append(
            Fault(name=name, arg=arg, source=source, spec=f"{name}={arg_text}" if arg_text else name)
        )
    return faults


def prompt_faults(prompt: str | None) -> list[Fault]:
    """Faults named by ``[sim:...]`` markers inside a prompt.

    >>> [f.spec for f in prompt_faults("A red car [sim:slow=2,fail]")]
    ['slow=2', 'fail']
    """
    if not prompt:
        return []
    faults: list[Fault] = []
    for match in PROMPT_MARKER.finditer(prompt):
        faults.extend(parse_faults(match.group(1), source="prompt"))
    return faults


def strip_markers(prompt: str | None) -> str:
    """The prompt without its ``[sim:...]`` markers (used only to decide whether a prompt carries text).

    >>> strip_markers("[sim:fail] A red car")
    'A red car'
    """
    return PROMPT_MARKER.sub("", prompt or "").strip()


@dataclass
class FaultSet:
    """The faults in force for one job, first occurrence of each name wins (prompt > header > config).

    >>> merged = FaultSet.merge(prompt_faults("[sim:slow=1]"), parse_faults("slow=5,fail"))
    >>> merged.get("slow"), "fail" in merged
    (1.0, True)
    """

    faults: dict[str, Fault] = field(default_factory=dict)

    @classmethod
    def merge(cls, *groups: Iterable[Fault]) -> FaultSet:
        merged: dict[str, Fault] = {}
        for group in groups:
            for fault in group:
                merged.setdefault(fault.name, fault)
        return cls(merged)

    def __contains__(self, name: str) -> bool:
        return name in self.faults

    def get(self, name: str, default: object = None) -> object:
        fault = self.faults.get(name)
        return default if fault is None else fault.arg

    def fault(self, name: str) -> Fault | None:
        return self.faults.get(name)

    def names(self) -> list[str]:
        return [str(f) for f in self.faults.values()]


def describe_faults() -> str:
    """A Markdown table of every fault (used by the CLI's --help-faults).

    >>> print(describe_faults().splitlines()[2])
    | `drop_after=ARG` | close the stream connection abruptly after event K |
    >>> "`http502_queued[=1]`" in describe_faults()
    True
    """
    lines = ["| fault | meaning |", "|---|---|"]
    for name, (conv, default, text) in _SPECS.items():
        shown = name if conv is None else (f"{name}[={default}]" if default is not ... else f"{name}=ARG")
        lines.append(f"| `{shown}` | {text} |")
    return "\n".join(lines)
