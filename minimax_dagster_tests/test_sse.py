"""Tests for minimax_dagster.api.sse: one or more per WHATWG parsing rule, plus real-socket streaming."""

from __future__ import annotations

import doctest
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import requests
import urllib3

from minimax_dagster.api import sse
from minimax_dagster.api.sse import ServerSentEvent, SSEDecoder, iter_sse_bytes, iter_sse_response
from minimax_dagster_tests import seed_stream
from minimax_dagster_tests.seed_stream import SEED_EVENTS, seed_stream_bytes

LINE_ENDS = pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
SEED_EXPECTED = [ServerSentEvent(data=payload) for payload in SEED_EVENTS]


def decode(*chunks: bytes) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder()
    return list(iter_sse_bytes(chunks, decoder=decoder)), decoder


def datas(*chunks: bytes) -> list[str]:
    return [event.data for event in decode(*chunks)[0]]


def one_byte_reads(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# --- the seed stream ---------------------------------------------------------------------------


@LINE_ENDS
def test_seed_stream_whole(line_end: str) -> None:
    events, decoder = decode(seed_stream_bytes(line_end))
    assert events == SEED_EXPECTED
    assert [e.json()["status"] for e in events] == ["created", "connected", "heartbeat"] + [
        "progress"
    ] * 7 + ["finished"]
    assert not decoder.discarded_partial_event
    assert decoder.bytes_seen == len(seed_stream_bytes(line_end))


@LINE_ENDS
def test_seed_stream_one_byte_per_read(line_end: str) -> None:
    events, decoder = decode(*one_byte_reads(seed_stream_bytes(line_end)))
    assert events == SEED_EXPECTED
    assert not decoder.discarded_partial_event


def test_seed_stream_crlf_split_after_every_cr() -> None:
    data = seed_stream_bytes("\r\n")
    chunks = [piece + b"\r" for piece in data.split(b"\r")[:-1]] + [data.split(b"\r")[-1]]
    assert b"".join(chunks) == data
    assert sum(chunk.endswith(b"\r") for chunk in chunks) == 22
    assert decode(*chunks)[0] == SEED_EXPECTED


def test_seed_stream_crlf_every_two_way_split() -> None:
    data = seed_stream_bytes("\r\n")
    for cut in range(len(data) + 1):
        assert decode(data[:cut], data[cut:])[0] == SEED_EXPECTED, cut


def test_seed_stream_events_arrive_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    data = seed_stream_bytes("\r\n")
    seen: list[tuple[int, ServerSentEvent]] = []
    for i, chunk in enumerate(one_byte_reads(data)):
        seen.extend((i, event) for event in decoder.feed(chunk))
    # Each event is dispatched by the byte that ends its blank line: the CR of the final CRLF.
    ends = [i for i in range(len(data)) if data[i - 3 : i + 1] == b"\r\n\r\n"]
    assert [i for i, _ in seen] == [end - 1 for end in ends]


# --- rule 1: UTF-8, BOM, replacement ---------------------------------------------------------


def test_bom_stripped_at_start() -> None:
    assert datas(b"\xef\xbb\xbfdata: x\n\n") == ["x"]


def test_bom_split_across_reads_stripped() -> None:
    assert datas(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == ["x"]


def test_only_one_bom_stripped() -> None:
    # The second BOM becomes part of the field name "\ufeffdata", an unknown field.
    assert datas(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n") == ["y"]


def test_bom_later_in_stream_is_kept() -> None:
    assert datas(b"data: a\n\ndata: \xef\xbb\xbfb\n\n\xef\xbb\xbfdata: c\n\n") == ["a", "\ufeffb"]


def test_invalid_utf8_becomes_replacement_character() -> None:
    assert datas(b"data: a\xffb\xc3(\n\n") == ["a\ufffdb\ufffd("]


@pytest.mark.parametrize("char", ["é", "…", "😀"])
def test_multibyte_char_split_across_reads(char: str) -> None:
    data = f"data: <{char}>\n\n".encode()
    for cut in range(len(data) + 1):
        assert datas(data[:cut], data[cut:]) == [f"<{char}>"], cut
    assert datas(*one_byte_reads(data)) == [f"<{char}>"]


def test_truncated_multibyte_char_at_end_of_stream() -> None:
    events, decoder = decode(b"data: ok\n\ndata: \xe2\x80")
    assert [e.data for e in events] == ["ok"]
    assert decoder.discarded_partial_event


# --- rule 2: line ends ---------------------------------------------------------------------------


@LINE_ENDS
def test_each_line_end_works(line_end: str) -> None:
    nl = line_end.encode()
    assert datas(b"data: a" + nl + b"data: b" + nl + nl + b"data: c" + nl + nl) == ["a\nb", "c"]


def test_mixed_line_endings_in_one_stream() -> None:
    stream = b"data: a\rdata: b\ndata: c\r\n\rdata: d\r\n\r\nevent: e\rdata: f\n\r\n"
    events, _ = decode(stream)
    assert [(e.event, e.data) for e in events] == [("message", "a\nb\nc"), ("message", "d"), ("e", "f")]
    assert decode(*one_byte_reads(stream))[0] == events


def test_lf_cr_is_two_line_ends() -> None:
    assert datas(b"data: a\n\rdata: b\n\n") == ["a", "b"]


def test_crlf_split_across_reads_is_one_line_end() -> None:
    # Were the split CRLF two line ends, the blank line would dispatch "a" alone.
    assert datas(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == ["a\nb"]


def test_crlf_split_across_reads_with_empty_reads_between() -> None:
    assert datas(b"data: a\r", b"", b"", b"\ndata: b\r\n\r\n") == ["a\nb"]


def test_cr_ending_a_read_dispatches_without_waiting_for_next_read() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == [ServerSentEvent(data="a")]
    assert decoder.feed(b"\ndata: b\r\r") == [ServerSentEvent(data="b")]


def test_pending_lone_cr_at_end_of_stream_is_a_line_end() -> None:
    events, decoder = decode(b"data: a\n", b"\r")
    assert [e.data for e in events] == ["a"]
    assert not decoder.discarded_partial_event


@pytest.mark.parametrize("char", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_other_unicode_line_breaks_are_not_line_ends(char: str) -> None:
    assert f"a{char}b".splitlines() == ["a", "b"]  # what str.splitlines would wrongly do
    assert datas(f"data: a{char}b\n\n".encode()) == [f"a{char}b"]
    assert datas(f"data: a\n{char}\ndata: b\n\n".encode()) == ["a\nb"]  # not a blank line either


# --- rule 3: a blank line dispatches --------------------------------------------------------------


def test_blank_line_dispatches_and_extra_blank_lines_do_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\n\n\ndata: a\n") == []
    assert decoder.feed(b"\n") == [ServerSentEvent(data="a")]
    assert decoder.feed(b"\n\n\n") == []


# --- rule 4: comments ----------------------------------------------------------------------------


def test_comments_ignored_and_counted() -> None:
    events, decoder = decode(b": hello\n:\n:keep-alive\r\ndata: a\n: inside an event\ndata: b\n\n:bye\n")
    assert [e.data for e in events] == ["a\nb"]
    assert decoder.comments_seen == 5
    assert not decoder.discarded_partial_event


def test_comment_only_stream_is_keepalive() -> None:
    decoder = SSEDecoder()
    for n in range(1, 4):
        assert decoder.feed(b": ping\n\n") == []
        assert decoder.comments_seen == n


def test_leading_space_before_colon_is_not_a_comment() -> None:
    events, decoder = decode(b" : x\ndata: a\n\n")
    assert [e.data for e in events] == ["a"]
    assert decoder.comments_seen == 0


# --- rule 5: field / value split ------------------------------------------------------------------


def test_split_at_first_colon() -> None:
    assert datas(b"data: a: b:c\n\n") == ["a: b:c"]
    assert datas(b'data:{"videoId":"user:1"}\n\n') == ['{"videoId":"user:1"}']


def test_exactly_one_leading_space_dropped() -> None:
    assert datas(b"data:  x\n\n") == [" x"]
    assert datas(b"data:x\n\n") == ["x"]
    assert datas(b"data: x \n\n") == ["x "]
    assert datas(b"data:\tx\n\n") == ["\tx"]


def test_field_without_colon_has_empty_value() -> None:
    assert datas(b"data\n\n") == [""]
    assert datas(b"data\ndata\n\n") == ["\n"]
    events, _ = decode(b"event\ndata: x\n\n")
    assert events == [ServerSentEvent(event="message", data="x")]


def test_empty_value_with_colon() -> None:
    assert datas(b"data:\n\n") == [""]
    assert datas(b"data: \n\n") == [""]


# --- rule 6: field names -------------------------------------------------------------------------


def test_field_names_are_case_sensitive() -> None:
    assert datas(b"Data: x\nDATA: y\ndata: z\n\n") == ["z"]
    events, _ = decode(b"Event: custom\nID: 1\nRetry: 5\ndata: z\n\n")
    assert events == [ServerSentEvent(data="z")]


def test_unknown_fields_ignored() -> None:
    events, _ = decode(b"foo: bar\n data: lead-space\ndata : trailing-space\ndata: x\nx-custom\n\n")
    assert events == [ServerSentEvent(data="x")]
    assert datas(b"foo: bar\n\n") == []


# --- rule 7: the four fields ---------------------------------------------------------------------


def test_data_lines_append() -> None:
    assert datas(b"data: a\ndata: b\ndata: c\n\n") == ["a\nb\nc"]


def test_event_sets_type_and_empty_event_means_message() -> None:
    events, _ = decode(b"event: progress\ndata: a\n\nevent:\ndata: b\n\nevent: x\nevent: y\ndata: c\n\n")
    assert [(e.event, e.data) for e in events] == [("progress", "a"), ("message", "b"), ("y", "c")]


def test_id_sets_last_event_id_and_persists() -> None:
    events, decoder = decode(b"data: a\n\nid: 1\ndata: b\n\ndata: c\n\nid\ndata: d\n\n")
    assert [e.id for e in events] == [None, "1", "1", ""]
    assert decoder.last_event_id == ""


def test_id_containing_nul_is_ignored() -> None:
    events, decoder = decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")
    assert [e.id for e in events] == ["1", "1"]
    assert decoder.last_event_id == "1"


def test_retry_with_ascii_digits_is_applied() -> None:
    events, decoder = decode(b"retry: 1500\ndata: a\n\ndata: b\n\nretry:0\n\n")
    assert [e.retry for e in events] == [1500, None]
    assert decoder.retry == 0


@pytest.mark.parametrize("value", ["12a", " 12", "-1", "1.5", "+3", "", "1 000", "²", "١٢"])
def test_retry_non_ascii_digits_ignored(value: str) -> None:
    events, decoder = decode(f"retry: 7\n\nretry: {value}\ndata: x\n\n".encode())
    assert events == [ServerSentEvent(data="x", retry=None)]
    assert decoder.retry == 7


# --- rule 8: dispatch ----------------------------------------------------------------------------


def test_empty_data_buffer_fires_nothing_but_resets_type() -> None:
    events, _ = decode(b"event: ignored\n\ndata: x\n\n")
    assert events == [ServerSentEvent(event="message", data="x")]


def test_id_only_block_updates_last_event_id_without_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 42\n\n") == []
    assert decoder.last_event_id == "42"
    assert decoder.feed(b"data: x\n\n") == [ServerSentEvent(data="x", id="42")]


def test_exactly_one_trailing_lf_dropped() -> None:
    assert datas(b"data: a\ndata:\n\n") == ["a\n"]
    assert datas(b"data\ndata\ndata\n\n") == ["\n\n"]


def test_type_data_and_retry_reset_after_dispatch_id_kept() -> None:
    events, _ = decode(b"event: t\nid: 9\nretry: 10\ndata: a\n\ndata: b\n\n")
    assert events == [
        ServerSentEvent(event="t", data="a", id="9", retry=10),
        ServerSentEvent(event="message", data="b", id="9", retry=None),
    ]


# --- rule 9: end of stream -----------------------------------------------------------------------


def test_truncated_final_event_discarded_and_flagged() -> None:
    data = seed_stream_bytes("\r\n")
    events, decoder = decode(data[:-2])  # drop the final blank line's CRLF
    assert events == SEED_EXPECTED[:-1]
    assert decoder.discarded_partial_event


def test_truncated_mid_line_discarded_and_flagged() -> None:
    events, decoder = decode(b'data: {"a":1}\n\ndata: {"b"')
    assert [e.data for e in events] == ['{"a":1}']
    assert decoder.discarded_partial_event


def test_truncated_block_id_does_not_update_last_event_id() -> None:
    events, decoder = decode(b"id: 1\ndata: a\n\nid: 2\ndata: b\n")
    assert [e.id for e in events] == ["1"]
    assert decoder.last_event_id == "1"
    assert decoder.discarded_partial_event


def test_field_line_without_data_at_end_is_flagged() -> None:
    assert decode(b"data: a\n\nid: 5\n")[1].discarded_partial_event


@pytest.mark.parametrize("tail", [b"", b"\n", b": keep-alive\n", b": unterminated comment"])
def test_clean_end_not_flagged(tail: bytes) -> None:
    events, decoder = decode(b"data: a\n\n" + tail)
    assert [e.data for e in events] == ["a"]
    assert not decoder.discarded_partial_event


def test_close_is_idempotent_and_feed_after_close_raises() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n")
    assert decoder.close() == []
    assert decoder.close() == []
    with pytest.raises(RuntimeError):
        decoder.feed(b"data: b\n\n")


# --- misc API ------------------------------------------------------------------------------------


def test_json_and_counters() -> None:
    stream = b'data: {"status": "heartbeat",\ndata:  "n": [1, 2]}\n\n'
    events, decoder = decode(stream[:10], stream[10:])
    assert events[0].json() == {"status": "heartbeat", "n": [1, 2]}
    assert decoder.bytes_seen == len(stream) == 51


def test_event_is_frozen() -> None:
    event = ServerSentEvent(data="x")
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]


def test_many_events_and_long_line_are_linear() -> None:
    payload = json.dumps({"status": "progress", "pad": "x" * 150})
    stream = "".join(f"id: {i}\ndata: {payload}\r\n\r\n" for i in range(20_000)).encode()
    long_line = b"data: " + b"y" * 2_000_000 + b"\n\n"
    start = time.perf_counter()
    events, _ = decode(*(stream[i : i + 7] for i in range(0, len(stream), 7)))
    roomy = SSEDecoder(max_line_chars=4_000_000, max_event_chars=4_000_000)  # over the default 1 Mi caps
    long_chunks = (long_line[i : i + 100] for i in range(0, len(long_line), 100))
    long_events = list(iter_sse_bytes(long_chunks, decoder=roomy))
    elapsed = time.perf_counter() - start
    assert len(events) == 20_000 and events[-1].id == "19999"
    assert len(long_events[0].data) == 2_000_000
    assert elapsed < 20, elapsed  # linear: ~1-2 s; a quadratic rescan would take many minutes


def test_docstring_examples_run() -> None:
    for module in (sse, seed_stream):
        result = doctest.testmod(module)
        assert result.failed == 0
        assert result.attempted > 0


def test_iter_sse_response_needs_read1() -> None:
    class OldRaw:
        def read(self, n: int) -> bytes:
            return b""

    class Response:
        raw = OldRaw()

        def close(self) -> None:
            pass

    with pytest.raises(TypeError, match="read1"):
        next(iter_sse_response(Response()))  # type: ignore[arg-type]


# --- iter_sse_response over a real socket ---------------------------------------------------------


class RecordingDecoder(SSEDecoder):
    """Records every read handed to the decoder; signals when one ends in a bare CR."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []
        self.read_ended_with_cr = threading.Event()

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        self.chunks.append(chunk)
        if chunk.endswith(b"\r"):
            self.read_ended_with_cr.set()
        return super().feed(chunk)


@contextmanager
def one_shot_server(script: Callable[[socket.socket], None]) -> Iterator[str]:
    """Serve a single HTTP connection on 127.0.0.1 with ``script(conn)``; yield the URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            conn, _ = listener.accept()
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    more = conn.recv(4096)
                    if not more:
                        return
                    head += more
                assert b"accept-encoding: identity" in head.lower()
                script(conn)
        except BaseException as exc:
            errors.append(exc)
        finally:
            listener.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/sse"
    finally:
        thread.join(10)
    assert not thread.is_alive()
    if errors:
        raise errors[0]


def send_chunk(conn: socket.socket, data: bytes) -> None:
    conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))


def get_stream(url: str) -> requests.Response:
    return requests.get(url, stream=True, headers={"Accept-Encoding": "identity"}, timeout=10)


def test_iter_sse_response_close_delimited_streams_events() -> None:
    first_received = threading.Event()
    decoder = RecordingDecoder()
    log: list[str] = []

    def script(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Connection: close\r\n\r\n"
        )
        conn.sendall(b"\xef\xbb\xbf: hello\n\n" + f"data: {SEED_EVENTS[0]}\r\n\r\n".encode())
        log.append("server: waiting" if first_received.wait(10) else "server: timed out")
        conn.sendall(b"event: progress\r\ndata: second\r")  # the CRLF straddles two writes
        decoder.read_ended_with_cr.wait(10)  # make sure the client's read really ended on the CR
        conn.sendall(b"\ndata: more\r\n")
        time.sleep(0.02)
        conn.sendall(b"\r\n: keep-alive\n\n")
        time.sleep(0.02)
        conn.sendall(f"data: {SEED_EVENTS[-1]}\n\n".encode())
        log.append("server: sent last")

    events: list[ServerSentEvent] = []
    with one_shot_server(script) as url, get_stream(url) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        assert "Content-Length" not in response.headers
        for event in iter_sse_response(response, decoder=decoder):
            events.append(event)
            if len(events) == 1:
                log.append("client: got first")
                first_received.set()

    assert events == [
        ServerSentEvent(data=SEED_EVENTS[0]),
        ServerSentEvent(event="progress", data="second\nmore"),
        ServerSentEvent(data=SEED_EVENTS[-1]),
    ]
    assert log == ["client: got first", "server: waiting", "server: sent last"]
    assert decoder.comments_seen == 2
    assert not decoder.discarded_partial_event
    assert any(chunk.endswith(b"\r") for chunk in decoder.chunks)


def test_iter_sse_response_chunked_transfer_encoding() -> None:
    first_received = threading.Event()
    decoder = RecordingDecoder()
    log: list[str] = []
    snowman = "data: caf\u00e9 \u2603\n\n".encode()

    def script(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        send_chunk(conn, f"id: 1\r\ndata: {SEED_EVENTS[1]}\r\n\r\n".encode())
        log.append("server: waiting" if first_received.wait(10) else "server: timed out")
        send_chunk(conn, b"data: second\r")  # CRLF split across HTTP chunks
        send_chunk(conn, b"\n\r\n")
        time.sleep(0.02)
        cut = snowman.index(b"\xa9")  # split inside the two-byte "\u00e9"
        send_chunk(conn, snowman[:cut])
        send_chunk(conn, snowman[cut:])
        send_chunk(conn, b"retry: 3000\nid: 2\ndata: last\n\n")
        conn.sendall(b"0\r\n\r\n")
        log.append("server: sent last")

    events: list[ServerSentEvent] = []
    with one_shot_server(script) as url, get_stream(url) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        for event in iter_sse_response(response, decoder=decoder):
            events.append(event)
            if len(events) == 1:
                log.append("client: got first")
                first_received.set()

    assert events == [
        ServerSentEvent(data=SEED_EVENTS[1], id="1"),
        ServerSentEvent(data="second", id="1"),
        ServerSentEvent(data="caf\u00e9 \u2603", id="1"),
        ServerSentEvent(data="last", id="2", retry=3000),
    ]
    assert log == ["client: got first", "server: waiting", "server: sent last"]
    # urllib3's read1 goes through http.client's read1, which never returns more than the rest
    # of the current HTTP chunk, so chunk boundaries always show up as read boundaries.
    assert b"data: second\r" in decoder.chunks
    assert snowman[: snowman.index(b"\xa9")] in decoder.chunks
    assert decoder.last_event_id == "2" and decoder.retry == 3000


def test_iter_sse_response_truncated_close_delimited_body_is_flagged() -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        conn.sendall(f"data: {SEED_EVENTS[0]}\n\ndata: {SEED_EVENTS[1][:20]}".encode())

    decoder = SSEDecoder()
    with one_shot_server(script) as url, get_stream(url) as response:
        events = list(iter_sse_response(response, decoder=decoder))
    assert events == [ServerSentEvent(data=SEED_EVENTS[0])]
    assert decoder.discarded_partial_event


def test_iter_sse_response_decodes_gzip_sent_anyway() -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
            b"Connection: close\r\n\r\n"
        )
        gz = zlib.compressobj(wbits=31)
        for payload in SEED_EVENTS[:3]:
            conn.sendall(gz.compress(f"data: {payload}\r\n\r\n".encode()) + gz.flush(zlib.Z_SYNC_FLUSH))
            time.sleep(0.01)
        conn.sendall(gz.flush())

    with one_shot_server(script) as url, get_stream(url) as response:
        events = list(iter_sse_response(response))
    assert events == SEED_EXPECTED[:3]


def test_iter_sse_response_truncated_chunked_body_raises() -> None:
    # With chunked encoding a cut-off body is visible at the HTTP layer: urllib3 raises.
    def script(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        send_chunk(conn, b"data: a\n\n")
        conn.sendall(b"20\r\ndata: trunc")  # promises 0x20 bytes, sends 11, closes

    events: list[ServerSentEvent] = []
    with (
        one_shot_server(script) as url,
        get_stream(url) as response,
        pytest.raises(urllib3.exceptions.ProtocolError),
    ):
        events.extend(iter_sse_response(response))
    assert events == [ServerSentEvent(data="a")]
