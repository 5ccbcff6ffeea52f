"""The smoke target over HTTP: any implementation of the app's endpoints (README "For the iOS
team: videogen serve": `videogen serve`, or the deployed Supabase Edge Functions).

Only what the endpoints show is checked here; balances and the ledger come from the
configured backend when it turns out to be the endpoint's own (a job created over HTTP
is found there under the token's user), and are otherwise reported as not checked.
Requests go through the `EndpointClient` it is given (core/smoke/client.py; httpx in
providers/endpoints.py), opened on the first request.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from videogen_cli.core.jobs import JobService
from videogen_cli.core.requests import check_uuid
from videogen_cli.core.smoke.client import (
    EndpointClient,
    EndpointFailure,
    EndpointResponse,
    FailureKind,
    OpenEndpointClient,
)
from videogen_cli.core.smoke.targets import (
    CreateAnswer,
    JobView,
    OnPoll,
    Principal,
    SmokeRequest,
    TargetUnreachable,
    job_status,
)
from videogen_cli.core.watching import Backoff
from videogen_cli.domain import JsonDict
from videogen_cli.errors import ErrorCode, UsageError, VideogenError
from videogen_cli.ports import Clock

FUNCTIONS = "/functions/v1"
# The catalog's cheapest text-to-video request, for endpoints whose models list is unusable.
FALLBACK_MODEL = "sora-2-t2v"
FALLBACK_DURATION: object = 4
REQUEST_TIMEOUT = 30.0
MIN_REQUEST_TIMEOUT = 10.0
PROBE_TIMEOUT = 10.0
# Both spellings of the replay marker (the backend plan's, and Stripe's).
REPLAY_HEADERS = ("X-Idempotent-Replay", "Idempotent-Replayed")
# Answers that mean "try again later", never a verdict on the job.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class UnexpectedAnswer(VideogenError):
    """The endpoint answered something the contract does not allow (a failed check)."""

    default_code = ErrorCode.UNEXPECTED_ANSWER


def token_subject(token: str) -> str:
    """The `sub` of a JWT, read without verifying it (the endpoint verifies it)."""
    parts = token.strip().split(".")
    try:
        if len(parts) != 3:
            raise ValueError
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return check_uuid(str(claims["sub"]), "the token's user (sub)")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise UsageError(
            "--token is not a user JWT with a UUID `sub`",
            hint="mint one with: videogen token --user UUID",
        ) from None


def normalise_endpoint(url: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"--endpoint must be an http(s) URL, not {url[:80]!r}",
            hint="e.g. --endpoint http://127.0.0.1:54321 or https://<project>.supabase.co",
        )
    return url.removesuffix(FUNCTIONS)


class HttpTarget:
    mode = "http"

    def __init__(
        self,
        endpoint: str,
        token: str,
        *,
        open_client: OpenEndpointClient,
        mint: Callable[[str, str, int], str],
        books: Callable[[], JobService | None] = lambda: None,
        jwt_secret: str | None = None,
        apikey: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        from videogen_cli.core.jobs import SystemClock

        self.base = normalise_endpoint(endpoint)
        self.description = self.base
        self._user = Principal(token_subject(token), token.strip())
        self.environment: JsonDict = {"backend": None, "provider": None}
        self.can_fail_on_purpose: bool | None = None
        self.paid = False
        self.clock: Clock = clock or SystemClock()
        self._books_factory = books
        self._books: JobService | None = None
        self._books_state = "unknown"  # "unknown" | "candidate" | "confirmed" | "other"
        self._jwt_secret = jwt_secret
        self._apikey = apikey
        self._deadline: float | None = None
        self._open_client = open_client
        self._mint = mint  # (secret, user id, ttl seconds) -> a user token
        self._client: EndpointClient | None = None
        self.models_note: str | None = None

    # --- plumbing ----------------------------------------------------------------------
    def _http(self) -> EndpointClient:
        if self._client is None:
            headers = {"x-client-info": "videogen-smoke"}
            if self._apikey:
                headers["apikey"] = self._apikey
            self._client = self._open_client(self.base, headers)
        return self._client

    def _timeout(self) -> float:
        """A request may outlive the check's deadline by up to MIN_REQUEST_TIMEOUT: a short
        deadline bounds the waiting for a job, it must not cut a create short."""
        if self._deadline is None:
            return REQUEST_TIMEOUT
        left = self._deadline - self.clock.monotonic()
        return max(MIN_REQUEST_TIMEOUT, min(REQUEST_TIMEOUT, left))

    def _request(
        self,
        method: str,
        path: str,
        who: Principal | None,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> EndpointResponse:
        sent = dict(headers or {})
        if who is not None and who.token:
            sent["Authorization"] = f"Bearer {who.token}"
        seconds = timeout if timeout is not None else self._timeout()
        try:
            return self._http().request(
                method, path, headers=sent, timeout=seconds, json=json, params=params
            )
        except EndpointFailure as exc:
            failure = exc
        if failure.kind is FailureKind.TIMEOUT:
            raise UnexpectedAnswer(f"{method} {path}: no answer within {seconds:.0f} s")
        if failure.kind is FailureKind.UNREACHABLE:
            raise TargetUnreachable(
                f"{self.base} cannot be reached ({failure.detail})",
                hint="check --endpoint, and that the server is running",
            )
        if failure.kind is FailureKind.BROKEN:
            # Connected, then no (valid) answer: the handler crashed or broke the protocol.
            # That is the implementation failing this check, not the target being away
            # (the probe still turns it into "unreachable" before any check runs).
            raise UnexpectedAnswer(
                f"{method} {path}: the connection closed without a valid answer ({failure.detail})"
            )
        # An undecodable body, endless redirects.
        raise UnexpectedAnswer(f"{method} {path}: no usable answer ({failure.detail})")

    # --- the Target protocol -----------------------------------------------------------
    def probe(self) -> None:
        """Any HTTP answer proves the endpoint is there; /healthz may also say what runs."""
        try:
            response = self._request("GET", "/healthz", None, timeout=PROBE_TIMEOUT)
        except UnexpectedAnswer as exc:
            raise TargetUnreachable(
                f"{self.base} did not answer: {exc.message}", hint="check --endpoint"
            ) from None
        if response.status_code == 200:
            body = _json(response)
            if isinstance(body, dict):
                for name in ("backend", "provider"):
                    if isinstance(body.get(name), str):
                        self.environment[name] = body[name]
        provider = self.environment["provider"]
        self.paid = provider == "fal"
        self.can_fail_on_purpose = {"fal": False, "simulator": True}.get(str(provider))

    def plan_request(self, model: str | None, prompt: str) -> SmokeRequest:
        """The cheapest text-to-video request the endpoint's catalog offers."""
        chosen = _cheapest_listed(self._list_models(), model)
        if chosen is None:
            self.models_note = "the models endpoint gave no usable catalog"
            return SmokeRequest(model or FALLBACK_MODEL, FALLBACK_DURATION, None, prompt)
        return SmokeRequest(chosen[0], chosen[1], chosen[2], prompt)

    def _list_models(self) -> Any:
        try:
            response = self._request("GET", f"{FUNCTIONS}/models", self._user)
        except UnexpectedAnswer:
            return None
        return _json(response) if response.status_code == 200 else None

    def principal(self) -> Principal:
        return self._user

    def candidate_books(self) -> JobService | None:
        """The configured backend, unless a job created over HTTP proved it is another."""
        if self._books_state == "unknown":
            try:
                self._books = self._books_factory()
            except VideogenError:
                self._books = None
            self._books_state = "candidate" if self._books is not None else "other"
        return self._books if self._books_state != "other" else None

    def books(self) -> JobService | None:
        """The configured backend, once it proved to hold the jobs made over HTTP."""
        return self._books if self._books_state == "confirmed" else None

    def confirm_books(self, job_id: str, who: Principal) -> bool:
        """Whether the configured backend holds this job (made over HTTP) for this user."""
        if self._books_state in ("confirmed", "other"):
            return self._books_state == "confirmed"
        books = self.candidate_books()
        if books is None:
            return False
        try:
            job = books.find_job(job_id)
        except VideogenError:
            job = None
        if job is None or job.user_id != who.user_id:
            self._books_state = "other"
            return False
        self._books_state = "confirmed"
        return True

    @property
    def books_confirmed(self) -> bool:
        return self._books_state == "confirmed"

    def poor_principal(self, user_id: str) -> Principal | str:
        """A token for a user with no credits, or why none can be had."""
        # The same signing as `videogen token` (the `mint` it was given).
        mint = self._mint
        if not self._jwt_secret:
            # Signed with a throwaway secret: an endpoint that checks signatures refuses it
            # (401, and the check is skipped with this reason); one that takes any token
            # still has its credit check tested, on the run's own user without credits.
            reason = (
                "no token for a user without credits: the endpoint's JWT secret is not known "
                "here (set SUPABASE_JWT_SECRET)"
            )
            return Principal(user_id, mint(secrets.token_hex(32), user_id, 3600), reason)
        return Principal(user_id, mint(self._jwt_secret, user_id, 3600))

    def set_deadline(self, monotonic_deadline: float) -> None:
        self._deadline = monotonic_deadline

    def create(self, who: Principal, request: SmokeRequest, key: str) -> CreateAnswer:
        body = {
            "model_id": request.model,
            "prompt": request.prompt,
            "settings": {"duration": request.duration},
        }
        response = self._request(
            "POST",
            f"{FUNCTIONS}/generate-video",
            who,
            json=body,
            headers={"Idempotency-Key": key},
        )
        data = _json(response)
        data = data if isinstance(data, dict) else {}
        shown = f"HTTP {response.status_code} {_compact(response)}"
        marked = [
            h for h in REPLAY_HEADERS if response.headers.get(h, "").strip().lower() == "true"
        ]
        marker = ", ".join(f"{h}: true" for h in marked) or None
        missing = tuple(h for h in REPLAY_HEADERS if h not in marked) if marked else ()
        if response.status_code == 200:
            return CreateAnswer(
                ok=True,
                shown=shown,
                job_id=_str(data.get("job_id")),
                status=job_status(data.get("status")),
                said=_str(data.get("status")),
                credits_used=_int(data.get("credits_used")),
                replayed=marker is not None,
                replay_marker=marker,
                replay_headers_missing=missing,
                body=data,
                http_status=response.status_code,
            )
        if response.status_code == 503:
            raise TargetUnreachable(f"{self.base} says the backend is unavailable: {shown}")
        error = data.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        refusal = {402: "insufficient_credits", 422: "idempotency_key_reused"}.get(
            response.status_code, str(code or f"http_{response.status_code}")
        )
        return CreateAnswer(
            ok=False,
            shown=shown,
            job_id=_str(data.get("job_id")),
            refusal=refusal,
            replayed=marker is not None,
            replay_marker=marker,
            replay_headers_missing=missing,
            body=data,
            http_status=response.status_code,
        )

    def status(self, job_id: str, who: Principal) -> JobView:
        response = self._request(
            "GET", f"{FUNCTIONS}/get-video-status", who, params={"job_id": job_id}
        )
        if response.status_code in TRANSIENT_STATUSES:
            raise _Transient(f"HTTP {response.status_code} {_compact(response)}")
        data = _json(response)
        if response.status_code != 200 or not isinstance(data, dict):
            raise UnexpectedAnswer(
                f"get-video-status of job {job_id} answered HTTP {response.status_code} "
                f"{_compact(response)}; expected 200 with the job"
            )
        return JobView(
            job_id=_str(data.get("job_id")) or job_id,
            status=job_status(data.get("status")),
            said=str(data.get("status")),
            video_url=_str(data.get("video_url")),
            error=_str(data.get("error")),
            credits_used=_int(data.get("credits_used")),
            refunded_credits=_int(data.get("refunded_credits")),
            queue_position=_int(data.get("queue_position")),
        )

    def wait(
        self, job_id: str, who: Principal, timeout: float, backoff: Backoff, on_poll: OnPoll
    ) -> JobView:
        deadline = self.clock.monotonic() + timeout
        last = JobView(job_id, None, None, None, None, None, said="unknown")
        attempt = 0
        while True:
            try:
                last = self.status(job_id, who)
            except _Transient as exc:
                last = JobView(
                    job_id,
                    last.status,
                    last.video_url,
                    last.error,
                    last.credits_used,
                    last.refunded_credits,
                    last.queue_position,
                    note=exc.message,
                    said=last.said,
                )
            on_poll(last)
            if last.terminal:
                return last
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                return last
            self.clock.sleep(min(backoff.delay(attempt, random.random), remaining))
            attempt += 1

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._books is not None:
            self._books.close()


class _Transient(VideogenError):
    """A 429/5xx while polling: the job's state is unknown for now, not wrong."""


def _json(response: EndpointResponse) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _compact(response: EndpointResponse, limit: int = 300) -> str:
    text = " ".join(response.text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _cheapest_listed(listed: Any, wanted: str | None) -> tuple[str, object, int | None] | None:
    """(model ref, duration, cost) from a models answer, read leniently.

    The shape `videogen serve` gives (README "For the iOS team: videogen serve"): a
    list, or {"models": [...]}, of {slug|id, credits_per_second, requires_image,
    settings: {duration: {allowed: [...]}}}; any other implementation may differ, so
    anything unreadable falls back to the catalog's cheapest model.
    """
    items = listed.get("models") if isinstance(listed, dict) else listed
    if not isinstance(items, list):
        return None
    best: tuple[int, str, object] | None = None
    for item in items:
        if not isinstance(item, dict):
            continue
        ref = _str(item.get("slug")) or _str(item.get("id"))
        if ref is None or item.get("requires_image") or item.get("active") is False:
            continue
        if wanted is not None and wanted not in (item.get("slug"), item.get("id")):
            continue
        rate = _int(item.get("credits_per_second"))
        settings = item.get("settings")
        spec = settings.get("duration") if isinstance(settings, dict) else None
        allowed = spec.get("allowed") if isinstance(spec, dict) else None
        if rate is None or not isinstance(allowed, list) or not allowed:
            continue
        for duration in allowed:
            try:
                seconds = int(str(duration).removesuffix("s"))
            except ValueError:
                continue
            if best is None or rate * seconds < best[0]:
                best = (rate * seconds, ref, duration)
    if best is None:
        return None
    return best[1], best[2], best[0]
