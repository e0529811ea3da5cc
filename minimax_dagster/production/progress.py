"""Following the videos of a run: which prompt each producer note is about, and what a person reads of it.

The producer reports everything: every heartbeat and every "processing" state of every stream. A person wants
each video's milestones (created with its video id, image ready, video ready, finished, stored or failed) and,
in a large run, a periodic summary. Each line of ``context.log`` is a synchronous event-log write on the step's
thread, and that thread is also the one draining the producer's notes: written one record per note, it falls
behind (``benchmarks/RESULTS.md`` has the profile).

So here, by default, a video costs at most five lines: its milestones, with the remarks the producer makes
about it (an uploaded image, the stored object, "finished" a moment before it) joined to the next one;
heartbeats, repeated states and polls only update counts, summed up every ``summary_interval`` seconds. And
every line goes through :class:`BoundedLog`, which writes at most about one record a second (a few saved up)
and spends at most half the thread's time writing: lines that come faster, or while records are slow, share
the next record, so logging never queues behind production and its cost does not grow with the run, while a
run of a few videos still sees each line in its own record.

This module does not import dagster: the log is anything with ``debug``/``info``/``warning``/``error``.

>>> import logging
>>> from minimax_dagster.production.prompts import VideoPrompt
>>> book = PromptBook([VideoPrompt(id="fox", prompt="A fox", template_id="1", partition="day-1")])
>>> book.key_for("fox", "day-1")
('day-1', 'fox')
>>> label(("day-1", "fox"))
'[day-1/fox]'
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from minimax_dagster.api.models import StreamEvent
from minimax_dagster.production import Note
from minimax_dagster.production.bounded_log import LEVELS, BoundedLog, by_level
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.prompts import VideoPrompt

#: A prompt of a run: ``(partition, id)``; the partition is ``None`` for an unpartitioned asset.
PromptKey = tuple[str | None, str]


_PREFIX = re.compile(r"\[([^\]]*)\] ")


#: :meth:`VideoProgress.note` lets a note that adds no line (a heartbeat) do the timed work at most this often.
TICK_SECONDS = 0.05


def label(key: PromptKey) -> str:
    """How a prompt is named in log lines: ``[partition/id]``, or ``[id]`` without partitions.

    >>> label((None, "fox")), label(("2026-11-20", "fox"))
    ('[fox]', '[2026-11-20/fox]')
    """
    return f"[{display(key)}]"


def display(key: PromptKey) -> str:
    """A prompt's name in text: ``partition/id``, or ``id`` without partitions.

    >>> display((None, "fox")), display(("2026-11-20", "fox"))
    ('fox', '2026-11-20/fox')
    """
    partition, prompt_id = key
    return f"{partition}/{prompt_id}" if partition is not None else prompt_id


class PromptBook:
    """The prompts of a run by ``(partition, id)``, and which of them each producer note and entry is about.

    The producer carries each prompt's partition on its notes and entries (a follower of a video another
    prompt made gets its own partition and id), so ``(partition, id)`` names a prompt exactly. An entry for a
    prompt that is already settled, or that the run never asked for, answers none.

    >>> a = VideoPrompt(id="one", prompt="A fox", template_id="1", partition="a")
    >>> b = VideoPrompt(id="one", prompt="A heron", template_id="1", partition="b")
    >>> book = PromptBook([a, b])
    >>> entry = ManifestEntry(id="one", partition="b", prompt="A heron", template_id="1", status="generated")
    >>> key, settled = book.settle(entry)
    >>> key, settled.id, settled.partition, book.open
    (('b', 'one'), 'one', 'b', 1)
    >>> book.settle(entry) is None
    True
    """

    def __init__(self, prompts: Iterable[VideoPrompt]) -> None:
        self.prompts: dict[PromptKey, VideoPrompt] = {(p.partition, p.id): p for p in prompts}
        self._open = set(self.prompts)

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def open(self) -> int:
        """How many prompts have no entry yet."""
        return len(self._open)

    def producer_prompts(self) -> list[VideoPrompt]:
        """The prompts to hand to the producer."""
        return list(self.prompts.values())

    def key_for(self, prompt_id: str | None, partition: str | None = None) -> PromptKey | None:
        """The prompt a note names by its id and partition; ``None`` when the run has no such prompt."""
        key = (partition, prompt_id or "")
        return key if prompt_id is not None and key in self.prompts else None

    def settle(self, entry: ManifestEntry) -> tuple[PromptKey, ManifestEntry] | None:
        """The open prompt ``entry`` answers (marked done) and the entry; ``None`` when it answers none."""
        key = (entry.partition, entry.id)
        if key not in self._open:
            return None
        self._open.discard(key)
        return key, entry


def is_milestone(event: StreamEvent) -> bool:
    """Whether a stream event is one a person follows a video by: created, an image or the video ready,
    finished, or an error.

    >>> is_milestone(StreamEvent(status="heartbeat")), is_milestone(StreamEvent(status="created"))
    (False, True)
    """
    if event.status in ("created", "finished") or event.is_error:
        return True
    if event.message is None:  # heartbeats and "connected": nothing that could announce an image or a video
        return False
    return bool(event.images) or event.final_video is not None


@dataclass
class _Video:
    stage: str = "waiting"  # waiting -> generating -> done | failed
    remarks: list[tuple[int, str]] = field(default_factory=list)
    held_since: float = 0.0


class VideoProgress:
    """Turns the producer's notes into the run's log and its counts.

    ``note()`` takes every note in order and returns ``(key, entry)`` when one finishes a prompt. Milestones
    go to the log at once (through ``log``, a :class:`BoundedLog`); a remark the producer makes without a
    stream event (stored, reused, an uploaded image, a failure), and "finished", are held for up to ``hold``
    seconds and joined to the video's next milestone or to its "n/N done" line; a warning (a wait, a retry)
    goes out at once on its own. Other notes (heartbeats, "processing" states, polls) are counted, and summed
    up in a progress line every ``summary_interval`` seconds; with ``log_heartbeats`` each is also logged at
    debug.

    >>> import logging
    >>> from minimax_dagster.production.producer import Note
    >>> book = PromptBook([VideoPrompt(id="fox", prompt="A fox", template_id="1")])
    >>> progress = VideoProgress(BoundedLog(logging.getLogger("progress-example")), book)
    >>> progress.note(Note(message="[fox] created v1", event=StreamEvent(status="created"), prompt_id="fox"))
    >>> progress.note(Note(level="debug", message="[fox] heartbeat", event=StreamEvent(status="heartbeat"),
    ...                    prompt_id="fox"))
    >>> progress.summary()
    'progress: 0/1 done (0%): 0 generated, 0 reused, 0 failed; 1 generating, 0 waiting; 1 heartbeat(s)'
    """

    def __init__(
        self,
        log: BoundedLog,
        book: PromptBook,
        *,
        log_heartbeats: bool = False,
        summary_interval: float = 30.0,
        hold: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.book = book
        self.log_heartbeats = log_heartbeats
        self.summary_interval = summary_interval
        self.hold = hold
        self._clock = clock
        self._videos = {key: _Video() for key in book.prompts}
        self._held: set[PromptKey] = set()
        self.statuses: Counter[str] = Counter()
        self.events: dict[str | None, Counter[str]] = {}
        self.reused = 0
        self._next_summary = clock() + summary_interval
        self._next_tick = -math.inf

    # ------------------------------------------------------------------------------------------ notes

    def note(self, note: Note) -> tuple[PromptKey, ManifestEntry] | None:
        """Take one note; ``(key, entry)`` when it is a prompt's finished entry."""
        now = self._clock()
        queued = self.log.waiting
        partition = note.partition
        key = self.book.key_for(note.prompt_id, partition)
        settled = None
        if note.entry is not None:
            settled = self.book.settle(note.entry)
            if settled is None:
                self.log.add(
                    "debug", f"[{note.entry.id}] an entry for no open prompt of this run was ignored"
                )
            else:
                self._finish(*settled)
        elif note.event is not None:
            self._event(key, note, note.event)
        elif note.message is not None:
            self._remark(key, note)
        # Most notes (heartbeats) add no line: the timed work of tick() (held remarks, the summary, the log's
        # budget) is then done at most every TICK_SECONDS, not once per note.
        if self.log.waiting > queued or now >= self._next_tick:
            self.tick(now)
        return settled

    def _event(self, key: PromptKey | None, note: Note, event: StreamEvent) -> None:
        status = event.status or "unknown"
        self.statuses[status] += 1
        self.events.setdefault(key[0] if key else None, Counter())[status] += 1
        video = self._videos.get(key) if key else None
        if video is not None and video.stage == "waiting":
            video.stage = "generating"
        level = LEVELS.get(note.level, LEVELS["info"])
        if event.status == "finished" and video is not None and key is not None:
            self._hold(key, video, level, _strip(note))  # storing follows at once: one line for both
        elif is_milestone(event):
            self._say(key, note, level)
        elif self.log_heartbeats:
            self.log.add("debug", self._text(key, note))

    def _remark(self, key: PromptKey | None, note: Note) -> None:
        level = LEVELS.get(note.level, LEVELS["info"])
        video = self._videos.get(key) if key else None
        if level <= LEVELS["debug"]:
            # The producer's debug remarks are the polls of a reattached job: it is generating.
            self.statuses["poll"] += 1
            if video is not None and video.stage == "waiting":
                video.stage = "generating"
            if self.log_heartbeats:
                self.log.add("debug", self._text(key, note))
            return
        if video is None or key is None:
            self.log.add(level, self._text(key, note))
            return
        if level == LEVELS["warning"]:
            # A warning (a wait for capacity, a retry) is news on its own: said at once, in its own record,
            # after what was held for the video. An error ("failed: ...") is held: the entry follows at once.
            self._release_held(key)
            self.log.add(level, self._join(key, key[1], [(level, _strip(note))]))
            return
        self._hold(key, video, level, _strip(note))

    def _release_held(self, key: PromptKey) -> None:
        video = self._videos[key]
        self._add(key, key[1], video.remarks)
        self._release(key, video)

    def _hold(self, key: PromptKey, video: _Video, level: int, text: str) -> None:
        if not video.remarks:
            video.held_since = self._clock()
            self._held.add(key)
        video.remarks.append((level, text))

    def _say(self, key: PromptKey | None, note: Note, level: int) -> None:
        """Log a milestone, with the remarks held for its video in front."""
        video = self._videos.get(key) if key else None
        parts: list[tuple[int, str]] = [*(video.remarks if video else []), (level, _strip(note))]
        self._release(key, video)
        self._add(key, note.prompt_id, parts)

    def _finish(self, key: PromptKey, entry: ManifestEntry) -> None:
        video = self._videos[key]
        video.stage = "done" if entry.ok else "failed"
        self.reused += entry.status == "reused"
        parts = list(video.remarks)
        self._release(key, video)
        level = max([LEVELS["info"], *(n for n, _ in parts)])
        said = " ".join(text for _, text in parts)
        if not parts:
            parts.append((level, entry.status))
        if not entry.ok:
            level = max(level, LEVELS["warning"])
            if entry.error and entry.error not in said:
                parts.append((level, f"failed: {entry.error}"))
        done = len(self.book) - self.book.open
        parts.append((level, f"{done}/{len(self.book)} done"))
        self._add(key, entry.id, parts)

    def _release(self, key: PromptKey | None, video: _Video | None) -> None:
        if video is not None:
            video.remarks = []
        if key is not None:
            self._held.discard(key)

    def _add(self, key: PromptKey | None, prompt_id: str | None, parts: list[tuple[int, str]]) -> None:
        """Queue the video's ``parts`` joined: one line per level, so a line never mixes levels (a failure is
        not said at error level together with a milestone)."""
        for level, texts in by_level(parts):
            self.log.add(level, self._join(key, prompt_id, [(level, text) for text in texts]))

    @staticmethod
    def _join(key: PromptKey | None, prompt_id: str | None, parts: list[tuple[int, str]]) -> str:
        name = label(key) if key is not None else f"[{prompt_id}]"
        return f"{name} " + "; ".join(text for _, text in parts)

    def _text(self, key: PromptKey | None, note: Note) -> str:
        if key is None and note.prompt_id is None:
            return note.message or ""
        return self._join(key, note.prompt_id, [(0, _strip(note))])

    # ------------------------------------------------------------------------------------------ time

    def tick(self, now: float | None = None) -> None:
        """Let held remarks go out on their own after ``hold`` seconds, write a summary when one is due, and
        give the log its chance to write."""
        now = self._clock() if now is None else now
        self._next_tick = now + TICK_SECONDS
        for key in [k for k in self._held if now - self._videos[k].held_since >= self.hold]:
            self._release_held(key)
        if now >= self._next_summary:
            self._next_summary = now + self.summary_interval
            self.log.add("info", self.summary())
        self.log.tick()

    def finish(self, last_line: str | None = None) -> None:
        """Write everything still held or queued, then ``last_line`` (call once, when the producer is done):
        when logging is behind, they go out as one record."""
        for key in list(self._held):
            self._release_held(key)
        if last_line is not None:
            self.log.add("info", last_line)
        self.log.flush()

    # ------------------------------------------------------------------------------------------ counts

    def stages(self) -> Counter[str]:
        """How many prompts are waiting, generating, done and failed."""
        return Counter(video.stage for video in self._videos.values())

    def summary(self) -> str:
        """One progress line: done (with percent) / generating / waiting / failed, and the heartbeats seen."""
        stages = self.stages()
        total = len(self.book)
        finished = stages["done"] + stages["failed"]
        percent = 100 * finished // total if total else 100
        return (
            f"progress: {finished}/{total} done ({percent}%): {stages['done'] - self.reused} generated, "
            f"{self.reused} reused, {stages['failed']} failed; {stages['generating']} generating, "
            f"{stages['waiting']} waiting; {self.statuses['heartbeat']} heartbeat(s)"
        )


def _strip(note: Note) -> str:
    """The note's text without the producer's ``[id]`` prefix (the log line gets its own label)."""
    text = note.message or ""
    match = _PREFIX.match(text)
    if match and note.prompt_id is not None and note.prompt_id in match.group(1):
        return text[match.end() :]
    return text
