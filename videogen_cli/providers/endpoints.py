"""The HTTP client of `videogen smoke --endpoint` (httpx): the adapter behind the core's
`EndpointClient` (core/smoke/client.py), opened by `bootstrap.open_endpoint_client`.

It turns httpx's failures into the core's `EndpointFailure` kinds; the core words them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from videogen_cli.core.smoke.client import EndpointFailure, FailureKind


class HttpxEndpointClient:
    def __init__(self, base_url: str, headers: Mapping[str, str]) -> None:
        self._client = httpx.Client(base_url=base_url, headers=dict(headers))

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return self._client.request(
                method, path, headers=dict(headers), timeout=timeout, json=json, params=params
            )
        except httpx.TimeoutException as exc:
            raise EndpointFailure(FailureKind.TIMEOUT, _detail(exc)) from None
        except (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.ProxyError) as exc:
            raise EndpointFailure(FailureKind.UNREACHABLE, _detail(exc)) from None
        except httpx.TransportError as exc:
            raise EndpointFailure(FailureKind.BROKEN, _detail(exc)) from None
        except httpx.HTTPError as exc:
            raise EndpointFailure(FailureKind.UNUSABLE, _detail(exc)) from None

    def close(self) -> None:
        self._client.close()


def _detail(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"
