"""What the smoke target over HTTP (`core/smoke/http.py`) needs from an HTTP client.

The core owns this small interface; the adapter is `videogen_cli/providers/endpoints.py`
(httpx), opened through `bootstrap.open_endpoint_client`, so the core never imports an
HTTP library (the import contracts in pyproject.toml, README "Layout").
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any, Protocol


class EndpointResponse(Protocol):
    """One HTTP answer, as the checks read it."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive, as HTTP header names are."""
        ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any:
        """The body decoded as JSON; ValueError when it is not JSON."""
        ...


class EndpointClient(Protocol):
    """Requests to one endpoint's base URL."""

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> EndpointResponse:
        """The answer, or EndpointFailure when there is no usable one."""
        ...

    def close(self) -> None: ...


# Opens a client for (base URL, headers sent with every request).
OpenEndpointClient = Callable[[str, dict[str, str]], EndpointClient]


class FailureKind(enum.Enum):
    """Why a request got no usable answer."""

    TIMEOUT = "timeout"  # no answer in time
    UNREACHABLE = "unreachable"  # no connection (refused, DNS, proxy, not http(s))
    BROKEN = "broken"  # connected, then the connection closed without a valid answer
    UNUSABLE = "unusable"  # an answer that cannot be read (undecodable, endless redirects)


class EndpointFailure(Exception):
    """A request without a usable answer; ``detail`` is "<ExceptionType>: <text>"."""

    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
