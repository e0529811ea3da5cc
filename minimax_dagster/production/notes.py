"""Notes: what the producer reports (log lines and finished entries), and how stream events are worded.

Worker threads put notes on a :class:`NoteQueue`; the producer's run loop takes them in batches and hands them
to the caller on the caller's thread, so a Dagster step logs them in order from its own thread.

>>> notes = NoteQueue()
>>> notes.say(VideoPrompt(id="fox", template_id="1", partition="2024-05-01"), "created v1")
>>> [note] = notes.take(timeout=1)
>>> note.message, note.partition, note.prompt_id
('[2024-05-01/fox] created v1', '2024-05-01', 'fox')
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from dataclasses import dataclass

from minimax_dagster.api.models import StreamEvent
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.prompts import VideoPrompt


@dataclass(frozen=True)
class Note:
    """Something the producer reports: a log line (``level`` + ``message``) or a finished ``entry``.

    ``prompt_id`` and ``partition`` name the prompt it is about (the row's id is unique within its partition).

    >>> Note(message="[fox] finished", prompt_id="fox").level
    'info'
    """

    level: str = "info"
    message: str | None = None
    entry: ManifestEntry | None = None
    event: StreamEvent | None = None
    prompt_id: str | None = None
    partition: str | None = None


def describe_event(event: StreamEvent) -> tuple[str, str]:
    """``(level, text)`` of the log line for one stream event.

    Heartbeats, "connected" and the progress lines that restate their neighbours ("...: processing" after
    "Generating ...", "agent finished" before "finished") are debug; errors are warnings; the rest is info.

    >>> describe_event(StreamEvent.model_validate({"status": "created", "videoId": "v1"}))
    ('info', 'created v1')
    >>> describe_event(StreamEvent.model_validate({"status": "created", "videoId": "v1", "reconciled": "GET videos/"}))
    ('info', "created v1 (the create's answer was an error or lost; found in GET videos/)")
    """
    if event.is_heartbeat:
        return "debug", "heartbeat"
    if event.status == "created":
        found_by = (event.model_extra or {}).get("reconciled")
        if found_by:
            # The client's reconciliation found the job a failed create made (no second create).
            return (
                "info",
                f"created {event.video_id} (the create's answer was an error or lost; found in {found_by})",
            )
        return "info", f"created {event.video_id}"
    if event.status == "connected":
        return "debug", "connected"
    if event.status == "finished":
        return "info", "finished"
    text = event.progress_text
    level = "warning" if event.is_error else "info"
    if event.is_error:
        text = f"error {event.err_code}: {event.err_msg or text}"
    elif text is not None and (text.endswith(": processing") or text == "agent finished"):
        level = "debug"  # restates the line before ("Generating ...") or after ("finished")
    return level, text or f"{event.status} (type {event.type})"


class NoteQueue:
    """The notes of one run, put by worker threads and taken by the run loop (thread-safe).

    The run loop takes every note waiting at once (:meth:`take`). A debug note (a heartbeat, a "processing"
    state, a poll) does not wake a waiting run loop: at about ten notes a video, one wake-up per note was a
    good part of the run loop's CPU, and such notes are only counted. It is taken with the next other note, or
    when the run loop's wait times out (0.1 s in :meth:`VideoProducer.run`), in the order it was put.

    >>> notes = NoteQueue()
    >>> fox = VideoPrompt(id="a", template_id="1")
    >>> notes.say(fox, "heartbeat", "debug")
    >>> notes.finished(fox, ManifestEntry(id="a", template_id="1", status="reused"))
    >>> [(n.message, n.entry and n.entry.status) for n in notes.take(timeout=1)]
    [('[a] heartbeat', None), (None, 'reused')]
    >>> notes.take(timeout=0)
    []
    """

    def __init__(self) -> None:
        self._notes: deque[Note] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._waiting = False

    def say(
        self, prompt: VideoPrompt, message: str, level: str = "info", event: StreamEvent | None = None
    ) -> None:
        """A log line about ``prompt``, prefixed with its :attr:`~VideoPrompt.label`."""
        self._put(
            Note(
                level=level,
                message=f"[{prompt.label}] {message}",
                event=event,
                prompt_id=prompt.id,
                partition=prompt.partition,
            ),
            wake=level != "debug",
        )

    def event(self, prompt: VideoPrompt, event: StreamEvent) -> None:
        """The log line of one stream event (see :func:`describe_event`), carrying the event."""
        level, text = describe_event(event)
        self.say(prompt, text, level, event)

    def finished(self, prompt: VideoPrompt, entry: ManifestEntry) -> None:
        """The one entry of ``prompt``."""
        self._put(Note(entry=entry, prompt_id=prompt.id, partition=prompt.partition), wake=True)

    def _put(self, note: Note, *, wake: bool) -> None:
        with self._ready:
            self._notes.append(note)
            if wake and self._waiting:
                self._ready.notify()

    def take(self, timeout: float) -> list[Note]:
        """Every note waiting, oldest first; waits up to ``timeout`` seconds for a note that wakes it (not a
        debug note) when none is waiting, and gives what is there then (maybe nothing)."""
        with self._ready:
            self._wait(timeout)
            taken = list(self._notes)
            self._notes.clear()
        return taken

    def get(self, timeout: float) -> Note:
        """The next note (one); ``queue.Empty`` when none comes within ``timeout`` seconds."""
        with self._ready:
            self._wait(timeout)
            if not self._notes:
                raise queue.Empty
            return self._notes.popleft()

    def _wait(self, timeout: float) -> None:
        # Called holding self._ready: waits for a waking note, unless notes are already there.
        if not self._notes and timeout > 0:
            self._waiting = True
            try:
                self._ready.wait(timeout)
            finally:
                self._waiting = False

    def empty(self) -> bool:
        """Whether no note is waiting."""
        with self._ready:
            return not self._notes
