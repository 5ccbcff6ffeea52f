"""The HTTP client of `smoke --endpoint` (providers/endpoints.py) names each way a request
can go without a usable answer, over real sockets; the smoke target (core/smoke/http.py)
words each kind as the checks report it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from tests.smoke.fake_endpoints import token
from videogen_cli.bootstrap import open_endpoint_client
from videogen_cli.core.smoke.client import EndpointFailure, EndpointResponse, FailureKind
from videogen_cli.core.smoke.http import HttpTarget, UnexpectedAnswer
from videogen_cli.core.smoke.targets import TargetUnreachable
from videogen_cli.errors import VideogenError

USER = "3b0c1d7e-5a1f-4c8e-9d2a-7f6e5d4c3b2a"


@contextmanager
def raw_server(answer: bytes | None) -> Iterator[str]:
    """A socket that reads one request, then sends `answer` (None: nothing) and closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            if answer is None:
                release.wait()
            else:
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        release.set()
        thread.join()
        listener.close()


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def failure_of(base: str, timeout: float = 10.0) -> EndpointFailure:
    client = open_endpoint_client(base, {"x-client-info": "videogen-smoke"})
    try:
        with pytest.raises(EndpointFailure) as caught:
            client.request("GET", "/healthz", headers={}, timeout=timeout)
    finally:
        client.close()
    return caught.value


def test_nothing_listening_is_unreachable() -> None:
    failure = failure_of(f"http://127.0.0.1:{free_port()}")
    assert failure.kind is FailureKind.UNREACHABLE
    assert failure.detail.startswith("ConnectError: ")


def test_a_scheme_that_is_not_http_is_unreachable() -> None:
    failure = failure_of("ftp://127.0.0.1:21")
    assert failure.kind is FailureKind.UNREACHABLE
    assert failure.detail.startswith("UnsupportedProtocol: ")


def test_a_connection_closed_without_an_answer_is_broken() -> None:
    with raw_server(b"") as base:
        failure = failure_of(base)
    assert failure.kind is FailureKind.BROKEN
    assert failure.detail.startswith("RemoteProtocolError: ")


def test_no_answer_in_time_is_a_timeout() -> None:
    with raw_server(None) as base:
        failure = failure_of(base, timeout=0.2)
    assert failure.kind is FailureKind.TIMEOUT
    assert failure.detail.startswith("ReadTimeout: ")


def test_an_answer_is_returned_as_it_came() -> None:
    answer = b"HTTP/1.1 200 OK\r\nX-Idempotent-Replay: true\r\nContent-Length: 2\r\n\r\n{}"
    with raw_server(answer) as base:
        client = open_endpoint_client(base, {})
        try:
            response = client.request("GET", "/healthz", headers={}, timeout=10.0)
        finally:
            client.close()
    assert response.status_code == 200
    assert response.headers.get("x-idempotent-replay") == "true"  # any case
    assert response.json() == {}


class FailingClient:
    def __init__(self, kind: FailureKind) -> None:
        self.kind = kind

    def request(self, method: str, path: str, **_: Any) -> EndpointResponse:
        raise EndpointFailure(self.kind, "SomeError: what httpx said")

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        (FailureKind.TIMEOUT, UnexpectedAnswer, "GET /p: no answer within 30 s"),
        (FailureKind.UNREACHABLE, TargetUnreachable,
         "http://127.0.0.1:9 cannot be reached (SomeError: what httpx said)"),
        (FailureKind.BROKEN, UnexpectedAnswer,
         "GET /p: the connection closed without a valid answer (SomeError: what httpx said)"),
        (FailureKind.UNUSABLE, UnexpectedAnswer,
         "GET /p: no usable answer (SomeError: what httpx said)"),
    ],
)  # fmt: skip
def test_the_target_words_each_failure(
    kind: FailureKind, error: type[VideogenError], message: str
) -> None:
    opened: list[Mapping[str, str]] = []

    def open_client(base: str, headers: dict[str, str]) -> FailingClient:
        assert base == "http://127.0.0.1:9"
        opened.append(headers)
        return FailingClient(kind)

    target = HttpTarget(
        "http://127.0.0.1:9/functions/v1/",
        token(USER),
        open_client=open_client,
        mint=lambda secret, user, ttl: "unused",
        apikey="anon",
    )
    with pytest.raises(error) as caught:
        target._request("GET", "/p", None)
    assert type(caught.value) is error
    assert caught.value.message == message
    assert opened == [{"x-client-info": "videogen-smoke", "apikey": "anon"}]
