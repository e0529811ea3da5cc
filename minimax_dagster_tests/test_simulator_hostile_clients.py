"""The simulator under a hostile client, over real sockets: an oversized body, oversized or too many headers, a
slow-loris request and hundreds of idle connections. Each is refused or held cheaply; the others are still served.
(The limits are :data:`minimax_dagster.simulator.server.HOSTILE_CLIENT_LIMITS` and ``client_max_size``.)
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests

from minimax_dagster.simulator import MiniMaxSimulator

MiB = 1024 * 1024


def address(sim: MiniMaxSimulator) -> tuple[str, int]:
    parts = urlsplit(sim.base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def raw_answer(sim: MiniMaxSimulator, request: bytes) -> bytes:
    with socket.create_connection(address(sim), timeout=10) as conn:
        conn.sendall(request)
        return conn.recv(400)


def accounts_ok(sim: MiniMaxSimulator) -> bool:
    answer = requests.get(
        f"{sim.base_url}/accounts", headers={"Authorization": f"Bearer {sim.token}"}, timeout=10
    )
    return answer.status_code == 200 and bool(answer.json())


def test_an_oversized_create_body_is_refused_with_413(simulator: MiniMaxSimulator) -> None:
    answer = requests.post(
        f"{simulator.base_url}/videos/agent-create",
        data=b'{"templateId": "' + b"1" * (5 * MiB) + b'"}',
        headers={"Authorization": f"Bearer {simulator.token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 413
    assert accounts_ok(simulator)


def test_a_header_line_over_8190_bytes_is_refused(simulator: MiniMaxSimulator, caplog) -> None:
    caplog.set_level(logging.CRITICAL, logger="aiohttp.server")  # aiohttp logs each refusal with a traceback
    head = b"GET /v1/minimax/accounts HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
    answer = raw_answer(simulator, head)
    assert answer.startswith(b"HTTP/1.0 400") and b"Got more than 8190 bytes" in answer
    assert accounts_ok(simulator)


def test_more_than_128_headers_are_refused(simulator: MiniMaxSimulator, caplog) -> None:
    caplog.set_level(logging.CRITICAL, logger="aiohttp.server")
    lines = b"".join(b"X-H%d: y\r\n" % i for i in range(200))
    head = b"GET /v1/minimax/accounts HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n"
    answer = raw_answer(simulator, head)
    assert answer.startswith(b"HTTP/1.0 400") and b"Too many headers" in answer
    assert accounts_ok(simulator)


@contextlib.contextmanager
def held_connections(sim: MiniMaxSimulator, n: int, opening: bytes) -> Iterator[list[socket.socket]]:
    conns: list[socket.socket] = []
    try:
        for _ in range(n):
            conn = socket.create_connection(address(sim), timeout=10)
            conn.sendall(opening)
            conns.append(conn)
        yield conns
    finally:
        for conn in conns:
            conn.close()


def test_slow_loris_and_idle_connections_do_not_block_the_others(simulator: MiniMaxSimulator) -> None:
    partial = b"GET /v1/minimax/accounts HTTP/1.1\r\nHost: x\r\nX-Slow: "  # headers never finished
    with held_connections(simulator, 20, partial), held_connections(simulator, 300, b""):
        assert accounts_ok(simulator)
        assert raw_answer(simulator, b"GET /v1/minimax/accounts HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
            b"HTTP/1.1 401"
        )
    assert accounts_ok(simulator)
