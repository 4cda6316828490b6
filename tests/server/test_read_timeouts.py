"""Idle and half-sent connections are not kept open (found by fuzzing the server: they stayed open indefinitely):
a connection that sends nothing is closed after the read timeout, a head sent in part (or byte by byte) gets 408, a
body that stalls is dropped; a client that keeps its connection busy is served as before."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from bedrock_sessions import SessionClient
from bedrock_sessions.server import LocalServer

TIMEOUT = 0.5


@pytest.fixture()
def server() -> Iterator[LocalServer]:
    with LocalServer(SessionClient.memory(), read_timeout=TIMEOUT) as s:
        yield s


def connect(server: LocalServer) -> socket.socket:
    s = socket.create_connection((server.host, server.port), timeout=10)
    return s


def read_all(s: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    t0 = time.monotonic()
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out, time.monotonic() - t0


def test_a_silent_connection_is_closed(server: LocalServer) -> None:
    with connect(server) as s:
        out, took = read_all(s)
    assert out == b"" and took < 5


def test_half_a_head_gets_408(server: LocalServer) -> None:
    with connect(server) as s:
        s.sendall(b"GET /sessions/ HTTP/1.1\r\nHost: x\r\n")
        out, _ = read_all(s)
    assert out.startswith(b"HTTP/1.1 408 ")


def test_a_head_sent_byte_by_byte_is_cut_off(server: LocalServer) -> None:
    head = b"GET /sessions/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with connect(server) as s:
        t0 = time.monotonic()
        got = b""
        try:
            for b in head:  # a byte every 20 ms: each read is in time, the whole head is not
                s.sendall(bytes([b]))
                time.sleep(0.02)
                if time.monotonic() - t0 > 3 * TIMEOUT:
                    break
            got, _ = read_all(s)
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert got.startswith(b"HTTP/1.1 408 ") or got == b""
    assert time.monotonic() - t0 < 10


def test_a_stalled_body_is_dropped(server: LocalServer) -> None:
    with connect(server) as s:
        s.sendall(b"PUT /sessions/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        out, took = read_all(s)
    assert out == b"" and took < 5


def test_a_busy_keep_alive_client_is_served(server: LocalServer) -> None:
    client = server.boto3_client()
    for _ in range(3):
        client.create_session()
        time.sleep(TIMEOUT / 3)
    time.sleep(2 * TIMEOUT)  # its idle connection was closed meanwhile: the next call opens another
    assert len(client.list_sessions()["sessionSummaries"]) == 3
