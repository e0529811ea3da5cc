"""``minimax_dagster.production.progress``: the bounded log, the attribution of producer notes to (partition, id), and the
lines a person reads. Pure logic driven by a clock the tests move (the end-to-end runs are in test_execution.py).
"""

from __future__ import annotations

import functools

from minimax_dagster.api.models import StreamEvent
from minimax_dagster.production import Note
from minimax_dagster.production.bounded_log import BoundedLog
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.progress import TICK_SECONDS, PromptBook, VideoProgress
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.storage import video_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowLog:
    """A log whose every record takes ``cost`` seconds of the clock (like a slow event-log write)."""

    def __init__(self, clock: Clock, cost: float = 0.0) -> None:
        self.clock, self.cost = clock, cost
        self.records: list[tuple[str, str]] = []

    def _write(self, level: str, msg: str) -> None:
        self.clock.now += self.cost
        self.records.append((level, msg))

    def debug(self, msg: str) -> None:
        self._write("debug", msg)

    def info(self, msg: str) -> None:
        self._write("info", msg)

    def warning(self, msg: str) -> None:
        self._write("warning", msg)

    def error(self, msg: str) -> None:
        self._write("error", msg)

    def lines(self) -> list[str]:
        return [line for _, msg in self.records for line in msg.splitlines() if not line.startswith("(")]


def test_bounded_log_writes_each_line_while_it_keeps_up():
    clock = Clock()
    sink = SlowLog(clock, cost=0.001)
    log = BoundedLog(sink, clock=clock)
    for n in range(50):
        log.add("info", f"line {n}")
        log.tick()
        clock.now += 1.1  # under 1 line per second, 1 ms each: within both budgets
    log.flush()
    assert [m for _, m in sink.records] == [f"line {n}" for n in range(50)]
    assert log.merged == 0


def test_bounded_log_joins_lines_that_come_faster_than_its_record_rate():
    """100 lines/s of cheap writes for 10 s: every line written, in at most the burst plus 2 records a second
    (each record costs the step an event-log write whatever it holds)."""
    clock = Clock()
    sink = SlowLog(clock, cost=0.0005)
    log = BoundedLog(sink, clock=clock, records_per_second=2.0, burst_records=5)
    for n in range(1000):
        log.add("info", f"line {n}")
        log.tick()
        clock.now += 0.01
    log.flush()
    assert sink.lines() == [f"line {n}" for n in range(1000)]
    assert len(sink.records) <= 5 + 2 * 10 + 1, len(sink.records)


def test_bounded_log_never_falls_behind_and_loses_nothing():
    """1,000 lines/s of 20 ms writes would need 20 s of writing per second: the log spends at most its duty
    (25 %) plus one record per look, and every line is still written."""
    clock = Clock()
    sink = SlowLog(clock, cost=0.02)
    log = BoundedLog(sink, clock=clock, duty=0.25, burst=0.2)
    written_time = 0.0
    start = clock.now
    for n in range(5000):
        log.add("warning" if n == 4321 else "info", f"line {n}")
        before = clock.now
        log.tick()
        written_time += clock.now - before
        clock.now += 0.001
    log.flush()
    elapsed = clock.now - start  # the writes take clock time too
    written = sink.lines()
    assert sorted(written) == sorted(f"line {n}" for n in range(5000))
    assert [line for line in written if line != "line 4321"] == [
        f"line {n}" for n in range(5000) if n != 4321
    ]
    assert written_time <= 0.25 * elapsed + 0.2 + 0.02, f"{written_time:.2f} s of writing in {elapsed:.2f} s"
    assert len(sink.records) < 600, len(sink.records)
    assert [level for level, msg in sink.records if "line 4321" in msg] == ["warning"]
    assert ("warning", "line 4321") in sink.records, "a record that joins lines never mixes levels"


def test_a_record_joins_lines_of_one_level_only():
    """A burst of info lines with an error among them: one record per level, each in its lines' order."""
    clock = Clock()
    sink = SlowLog(clock)
    log = BoundedLog(sink, clock=clock, records_per_second=1.0, burst_records=1)
    log.add("info", "[a] created v1")
    log.tick()
    for line in ("[b] created v2", "[c] created v3"):
        log.add("info", line)
    log.add("error", "[d] failed: moderated")
    log.add("info", "[e] created v4")
    log.flush()
    assert [(level, msg.splitlines()[:-1] or msg) for level, msg in sink.records] == [
        ("info", "[a] created v1"),
        ("info", ["[b] created v2", "[c] created v3", "[e] created v4"]),
        ("error", "[d] failed: moderated"),
    ]


def _prompt(pid: str, text: str, partition: str | None = None) -> VideoPrompt:
    return VideoPrompt(id=pid, prompt=text, template_id="1", partition=partition)


def _entry(pid: str, text: str, *, partition: str | None = None, status: str = "generated") -> ManifestEntry:
    return ManifestEntry(
        id=pid,
        prompt=text,
        template_id="1",
        status=status,  # type: ignore[arg-type]
        key=video_key("1", text, None),
        partition=partition,
    )


def test_prompt_book_keys_on_partition_and_id():
    book = PromptBook(
        [_prompt("one", "A fox", "a"), _prompt("one", "A heron", "b"), _prompt("two", "A boat", "a")]
    )
    assert {p.id for p in book.producer_prompts()} == {"one", "two"}
    assert book.key_for("one", "b") == ("b", "one") and book.key_for("two", "a") == ("a", "two")
    assert book.key_for("two") is None, "an id alone does not name a prompt of a partitioned run"
    key, entry = book.settle(_entry("one", "A heron", partition="b"))
    assert key == ("b", "one") and (entry.partition, entry.id) == ("b", "one")
    assert book.settle(_entry("one", "A heron", partition="b")) is None, "a prompt is settled once"
    assert book.settle(_entry("one", "A heron", partition="c")) is None, "a partition the run never asked for"
    assert book.open == 2


def test_prompt_book_settles_the_same_prompt_in_two_partitions_separately():
    """The same prompt in two partitions is one video; the producer gives each row its own entry."""
    book = PromptBook([_prompt("one", "A fox", "a"), _prompt("one", "A fox", "b")])
    assert book.settle(_entry("one", "A fox", partition="a"))[0] == ("a", "one")
    assert book.open == 1
    assert book.settle(_entry("one", "A fox", partition="b"))[0] == ("b", "one")
    assert book.open == 0


def _note(pid: str, text: str, level: str = "info", *, partition: str | None = None, **event) -> Note:
    """A note as the producer makes it: it names the prompt by id and partition."""
    return Note(
        level=level,
        message=f"[{partition}/{pid}] {text}" if partition else f"[{pid}] {text}",
        event=StreamEvent.model_validate(event) if event else None,
        prompt_id=pid,
        partition=partition,
    )


def _stream(pid: str, partition: str | None = None) -> list[Note]:
    """What the producer says about one video, in order (the simulator's sequence)."""
    note = functools.partial(_note, partition=partition)
    image = {
        "attachmentInfo": {
            "type": 1,
            "attachments": [{"status": 3, "file": {"fileName": "i.png", "fileUrl": "https://c/i.png"}}],
        }
    }
    video = {
        "attachmentInfo": {
            "type": 3,
            "attachments": [{"status": 3, "file": {"fileName": "v.mp4", "fileUrl": "https://c/v.mp4"}}],
        }
    }
    processing = {
        "attachmentInfo": {"type": 3, "attachments": [{"status": 2, "file": {"fileName": "processing"}}]}
    }
    return [
        note(pid, "uploaded the input image as f1"),
        note(pid, "created v1", status="created", videoId="v1"),
        note(pid, "connected", "debug", status="connected"),
        *[note(pid, "heartbeat", "debug", status="heartbeat") for _ in range(20)],
        note(
            pid,
            "Generating image...",
            status="progress",
            type=1,
            message={"msgContent": "Generating image..."},
        ),
        note(pid, "image: i.png ready", status="progress", type=2, message=image),
        note(
            pid,
            "Generating video...",
            status="progress",
            type=1,
            message={"msgContent": "Generating video..."},
        ),
        *[
            note(pid, "video: processing", "debug", status="progress", type=2, message=processing)
            for _ in range(5)
        ],
        note(pid, "video: v.mp4 ready", status="progress", type=2, message=video),
        note(pid, "agent finished", "debug", status="progress", type=3, isFinished=True),
        note(pid, "finished", status="finished", videoId="v1"),
        note(pid, "stored 10 bytes at s3://b/v.mp4 in 0.10 s"),
    ]


def test_a_video_is_at_most_five_records_with_its_milestones():
    clock = Clock()
    sink = SlowLog(clock)
    book = PromptBook([_prompt("fox", "A fox", "day")])
    progress = VideoProgress(BoundedLog(sink, clock=clock), book, clock=clock)
    for note in _stream("fox", "day"):
        assert progress.note(note) is None
        clock.now += 0.05
    settled = progress.note(
        Note(entry=_entry("fox", "A fox", partition="day"), prompt_id="fox", partition="day")
    )
    progress.finish()
    assert settled is not None and settled[1].partition == "day"
    assert [m for _, m in sink.records] == [
        "[day/fox] uploaded the input image as f1; created v1",
        "[day/fox] image: i.png ready",
        "[day/fox] video: v.mp4 ready",
        "[day/fox] finished; stored 10 bytes at s3://b/v.mp4 in 0.10 s; 1/1 done",
    ]
    assert progress.statuses["heartbeat"] == 20
    assert progress.events["day"]["created"] == 1


def test_log_heartbeats_logs_every_note_at_debug():
    clock = Clock()
    sink = SlowLog(clock)
    progress = VideoProgress(
        BoundedLog(sink, clock=clock), PromptBook([_prompt("fox", "A fox")]), log_heartbeats=True, clock=clock
    )
    for note in _stream("fox"):
        progress.note(note)
    progress.finish()
    # Lines that came together share a record (at the highest of their levels).
    debug = sink.lines()
    assert debug.count("[fox] heartbeat") == 20 and "[fox] Generating video..." in debug


def test_a_remark_goes_out_alone_after_the_hold_and_a_warning_at_once():
    clock = Clock()
    sink = SlowLog(clock)
    progress = VideoProgress(
        BoundedLog(sink, clock=clock), PromptBook([_prompt("fox", "A fox")]), hold=2.0, clock=clock
    )
    progress.note(_note("fox", "uploaded the input image as f1"))
    clock.now += 1.0
    progress.tick()
    assert sink.records == []
    clock.now += 1.5
    progress.tick()
    assert sink.records == [("info", "[fox] uploaded the input image as f1")]
    progress.note(_note("fox", "finished", status="finished"))
    progress.note(_note("fox", "storing v1 failed (reset); attempt 2 of 4 in 2.0 s", "warning"))
    assert sink.records[1:] == [
        ("info", "[fox] finished"),
        ("warning", "[fox] storing v1 failed (reset); attempt 2 of 4 in 2.0 s"),
    ]


def test_failed_video_and_summary_line():
    clock = Clock()
    sink = SlowLog(clock)
    prompts = [_prompt("a", "A fox"), _prompt("b", "A heron"), _prompt("c", "A boat"), _prompt("d", "A tram")]
    progress = VideoProgress(
        BoundedLog(sink, clock=clock), PromptBook(prompts), summary_interval=10.0, clock=clock
    )
    progress.note(_note("a", "created v1", status="created", videoId="v1"))
    progress.note(_note("b", "failed: VideoFailedError: boom", "error"))
    progress.note(
        Note(
            entry=_entry("b", "A heron", status="failed").model_copy(
                update={"error": "VideoFailedError: boom"}
            ),
            prompt_id="b",
        )
    )
    progress.note(Note(entry=_entry("c", "A boat", status="reused"), prompt_id="c"))
    clock.now += 10.0
    progress.tick()
    progress.finish()
    messages = [m for _, m in sink.records]
    assert ("error", "[b] failed: VideoFailedError: boom; 1/4 done") in sink.records
    assert "[c] reused; 2/4 done" in messages
    assert messages[-1] == (
        "progress: 2/4 done (50%): 0 generated, 1 reused, 1 failed; 1 generating, 1 waiting; 0 heartbeat(s)"
    )


def test_a_failure_held_for_a_milestone_is_said_at_its_own_level() -> None:
    """A failure remark held for the video's next milestone is not said at error level together with the
    milestone: one line per level, the milestone at info."""
    clock = Clock()
    sink = SlowLog(clock)
    progress = VideoProgress(
        BoundedLog(sink, clock=clock), PromptBook([_prompt("html", "A page")]), clock=clock
    )
    progress.note(_note("html", "uploaded the input image as f1"))
    progress.note(_note("html", "failed: VideoFailedError: boom", "error"))
    progress.note(_note("html", "created v1", status="created", videoId="v1"))
    progress.finish()
    assert sink.records == [
        ("info", "[html] uploaded the input image as f1; created v1"),
        ("error", "[html] failed: VideoFailedError: boom"),
    ]


def test_heartbeats_alone_still_let_a_held_remark_go_out_after_the_hold() -> None:
    # Notes that add no line do the timed work at most every TICK_SECONDS, not never.
    clock = Clock()
    sink = SlowLog(clock)
    progress = VideoProgress(
        BoundedLog(sink, clock=clock), PromptBook([_prompt("fox", "A fox")]), hold=2.0, clock=clock
    )
    progress.note(_note("fox", "uploaded the input image as f1"))
    heartbeats = 0
    while not sink.records and heartbeats < 1000:
        clock.now += 0.01
        progress.note(_note("fox", "heartbeat", "debug", status="heartbeat"))
        heartbeats += 1
    assert sink.records == [("info", "[fox] uploaded the input image as f1")]
    assert 200 <= heartbeats <= 200 + TICK_SECONDS / 0.01 + 1


def test_a_heartbeat_does_no_timed_work_between_ticks_but_a_milestone_is_written_at_once() -> None:
    clock = Clock()
    sink = SlowLog(clock)
    log = BoundedLog(sink, clock=clock)
    progress = VideoProgress(log, PromptBook([_prompt("fox", "A fox")]), clock=clock)
    ticks = []
    original = log.tick
    log.tick = lambda: (ticks.append(clock.now), original())[1]  # type: ignore[method-assign]
    for _ in range(50):  # the clock does not move: one tick for all of them
        progress.note(_note("fox", "heartbeat", "debug", status="heartbeat"))
    assert len(ticks) == 1
    progress.note(_note("fox", "created v1", status="created", videoId="v1"))
    assert len(ticks) == 2 and sink.records == [("info", "[fox] created v1")]
    assert progress.statuses["heartbeat"] == 50
