"""``minimax_dagster.production.notes``: the queue between the producer's worker threads and its run loop.

The run loop takes notes in batches, and a debug note (a heartbeat) never wakes it on its own: these tests use
real threads and check what arrives, and in which order, not how fast.
"""

from __future__ import annotations

import queue
import threading
import time

import pytest

from minimax_dagster.api.models import StreamEvent
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.notes import Note, NoteQueue
from minimax_dagster.production.prompts import VideoPrompt

FOX = VideoPrompt(id="fox", prompt="A fox", template_id="1", partition="day")


def _wait_until_waiting(notes: NoteQueue) -> None:
    """Until the taker is blocked in the queue's wait (it set the flag under the queue's lock)."""
    for _ in range(2000):
        with notes._ready:
            if notes._waiting:
                return
        time.sleep(0.005)
    raise AssertionError("the taker never waited")


def _take_in_thread(notes: NoteQueue, timeout: float) -> tuple[threading.Thread, list[list[Note]]]:
    got: list[list[Note]] = []
    thread = threading.Thread(target=lambda: got.append(notes.take(timeout=timeout)), daemon=True)
    thread.start()
    _wait_until_waiting(notes)
    return thread, got


def test_take_gives_every_waiting_note_in_the_order_put() -> None:
    notes = NoteQueue()
    notes.event(FOX, StreamEvent(status="created", video_id="v1"))
    notes.event(FOX, StreamEvent(status="heartbeat"))
    notes.say(FOX, "stored 10 bytes")
    notes.finished(FOX, ManifestEntry(id="fox", template_id="1", status="generated"))
    taken = notes.take(timeout=5)
    assert [n.message for n in taken] == [
        "[day/fox] created v1",
        "[day/fox] heartbeat",
        "[day/fox] stored 10 bytes",
        None,
    ]
    assert taken[-1].entry is not None and taken[-1].partition == "day"
    assert notes.empty() and notes.take(timeout=0) == []


def test_a_note_that_is_news_wakes_a_waiting_taker() -> None:
    notes = NoteQueue()
    thread, got = _take_in_thread(notes, timeout=60)
    notes.event(FOX, StreamEvent(status="created", video_id="v1"))
    thread.join(30)
    assert not thread.is_alive(), "an info note did not wake the taker"
    assert [n.message for n in got[0]] == ["[day/fox] created v1"]


def test_a_debug_note_does_not_wake_the_taker_but_comes_with_the_next_note() -> None:
    notes = NoteQueue()
    thread, got = _take_in_thread(notes, timeout=60)
    for _ in range(3):
        notes.event(FOX, StreamEvent(status="heartbeat"))
    thread.join(0.3)
    assert thread.is_alive(), "a heartbeat woke the taker"
    notes.finished(FOX, ManifestEntry(id="fox", template_id="1", status="generated"))
    thread.join(30)
    assert not thread.is_alive()
    assert [n.message for n in got[0]] == ["[day/fox] heartbeat"] * 3 + [None]


def test_debug_notes_alone_are_taken_when_the_wait_times_out() -> None:
    notes = NoteQueue()
    thread, got = _take_in_thread(notes, timeout=0.2)
    notes.say(FOX, "polled v1: processing", "debug")
    thread.join(30)
    assert [n.message for n in got[0]] == ["[day/fox] polled v1: processing"]


def test_get_takes_one_note_and_raises_empty_when_there_is_none() -> None:
    notes = NoteQueue()
    with pytest.raises(queue.Empty):
        notes.get(timeout=0)
    notes.say(FOX, "one")
    notes.say(FOX, "two")
    assert notes.get(timeout=0).message == "[day/fox] one"
    assert [n.message for n in notes.take(timeout=0)] == ["[day/fox] two"]
