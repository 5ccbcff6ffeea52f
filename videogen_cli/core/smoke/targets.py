"""What the smoke checks run against: the core directly, or an implementation of the
app's endpoints over HTTP (`videogen_cli.core.smoke.http`).

Both targets answer in the same small vocabulary (`CreateAnswer`, `JobView`) so every
check is written once. Where a target cannot show something (an HTTP endpoint shows no
balances), `books` is None and the checks say what they did not verify.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from videogen_cli.core.jobs import JobService
from videogen_cli.core.requests import duration_seconds
from videogen_cli.core.watching import Backoff, WatchResult, watch
from videogen_cli.domain import Job, JobStatus, JsonDict, Model
from videogen_cli.errors import (
    BackendError,
    NotFoundError,
    ProviderError,
    RefusedError,
    UsageError,
    VideogenError,
)


def job_status(said: object) -> JobStatus | None:
    """The status an answer names, spelled exactly as the job object spells it, or None
    when it names none we know (the checks then fail, quoting what it said)."""
    try:
        return JobStatus(said) if isinstance(said, str) else None
    except ValueError:
        return None


class TargetUnreachable(BackendError):
    """The target stopped answering (connection refused, DNS, backend down): exit 5."""

    default_code = "target_unreachable"


@dataclass(frozen=True)
class Principal:
    """Whose credits a request spends: a user id, and over HTTP the user's token."""

    user_id: str
    token: str | None = None
    # Set when the token is not signed with the endpoint's secret (unknown here): the
    # reason to skip, should the endpoint refuse it with 401 as it should.
    unsigned_reason: str | None = None


@dataclass(frozen=True)
class SmokeRequest:
    """The one request every check sends (a prompt word added where a check needs it)."""

    model: str  # slug (or id) as the target accepts it
    duration: object  # as the model spells it (sora: 4, veo: "4s")
    cost: int | None  # credits one job costs, when the target can tell
    prompt: str

    def with_prompt(self, prompt: str) -> SmokeRequest:
        return SmokeRequest(self.model, self.duration, self.cost, prompt)


@dataclass(frozen=True)
class CreateAnswer:
    """What a generate call came back with."""

    ok: bool  # a job came back (new or replayed)
    shown: str  # what came back, as a failure message quotes it
    job_id: str | None = None
    status: JobStatus | None = None  # None: no status we know (`said` is what came back)
    credits_used: int | None = None
    replayed: bool | None = None  # None: the answer did not say either way
    replay_marker: str | None = None  # how the replay was marked (field or header)
    refusal: str | None = None  # the error code when refused: insufficient_credits, …
    body: JsonDict = field(default_factory=dict)
    # Over HTTP: replay headers absent from an answer that carries the other one.
    replay_headers_missing: tuple[str, ...] = ()
    http_status: int | None = None  # over HTTP: the answer's status code
    said: str | None = None  # the status as the answer spelled it (shown when not one we know)

    @property
    def status_shown(self) -> str | None:
        return self.status.value if self.status is not None else self.said


@dataclass(frozen=True)
class JobView:
    job_id: str
    status: JobStatus | None  # None: no status we know (`said` is what came back)
    video_url: str | None
    error: str | None
    credits_used: int | None
    refunded_credits: int | None
    queue_position: int | None = None
    note: str | None = None  # transient trouble seen while reading it
    said: str = ""  # the status as the answer spelled it (shown when not one we know)

    @property
    def terminal(self) -> bool:
        return self.status is not None and self.status.terminal

    @property
    def status_shown(self) -> str:
        return self.status.value if self.status is not None else self.said

    def describe(self) -> str:
        text = self.status_shown
        if self.status is JobStatus.PENDING and self.queue_position is not None:
            text += f" (queue position {self.queue_position})"
        if self.error:
            text += f": {self.error}"
        return text

    @staticmethod
    def of(job: Job, note: str | None = None) -> JobView:
        return JobView(
            job.job_id,
            job.status,
            job.video_url,
            job.error,
            job.credits_used,
            job.refunded_credits,
            job.queue_position,
            note,
        )


OnPoll = Callable[[JobView], None]


class Target(Protocol):
    mode: str  # "direct" | "http"
    description: str  # where, never a secret
    environment: JsonDict
    # True: the provider fails `sim:fail` prompts; False: it cannot be told to fail
    # (real fal); None: unknown (an endpoint that does not say).
    can_fail_on_purpose: bool | None
    paid: bool  # real fal: every job costs money

    def probe(self) -> None:
        """Raise TargetUnreachable when the target cannot be reached at all."""
        ...

    def plan_request(self, model: str | None, prompt: str) -> SmokeRequest: ...

    def principal(self) -> Principal:
        """The user whose credits the checks spend."""
        ...

    def books(self) -> JobService | None:
        """The backend behind the target, when smoke can read it (balances, ledger)."""
        ...

    def candidate_books(self) -> JobService | None:
        """What `books` will be if the target's jobs turn up there (read before a create)."""
        ...

    def confirm_books(self, job_id: str, who: Principal) -> bool:
        """Whether `books` holds this job of this user (so it is the target's backend)."""
        ...

    @property
    def books_confirmed(self) -> bool: ...

    def poor_principal(self, user_id: str) -> Principal | str:
        """Who to send as a user without enough credits, or why nobody can be."""
        ...

    def set_deadline(self, monotonic_deadline: float) -> None: ...

    def create(self, who: Principal, request: SmokeRequest, key: str) -> CreateAnswer: ...

    def status(self, job_id: str, who: Principal) -> JobView: ...

    def wait(
        self, job_id: str, who: Principal, timeout: float, backoff: Backoff, on_poll: OnPoll
    ) -> JobView:
        """Poll with backoff until terminal or `timeout` seconds passed; the last view."""
        ...

    def close(self) -> None: ...


def cheapest_text_model(models: list[Model]) -> tuple[Model, object]:
    """The active text-to-video model and duration that cost the fewest credits."""
    best: tuple[int, Model, object] | None = None
    for model in models:
        spec = model.settings.get("duration")
        if not model.active or model.requires_image or spec is None:
            continue
        for duration in spec.allowed or (spec.default,):
            cost = model.credits_per_second * duration_seconds(duration)
            if best is None or cost < best[0]:
                best = (cost, model, duration)
    if best is None:
        raise NotFoundError(
            "no active text-to-video model to run the smoke checks with",
            code="model_not_found",
            hint="pass --model SLUG (see: videogen models)",
        )
    return best[1], best[2]


class DirectTarget:
    """The configured backend through the core, exactly as the commands use it."""

    mode = "direct"

    def __init__(self, service: JobService, *, provider: str, where: str, user_id: str) -> None:
        self.service = service
        self.description = where
        self.environment: JsonDict = {
            "backend": service.backend_name,
            "provider": provider,
        }
        self.can_fail_on_purpose: bool | None = provider == "simulator"
        self.paid = provider == "fal"
        self._user = Principal(user_id)

    def probe(self) -> None:
        try:
            self.service.list_models()
        except BackendError as exc:
            raise TargetUnreachable(exc.message, hint=exc.hint) from exc

    def plan_request(self, model: str | None, prompt: str) -> SmokeRequest:
        if model is None:
            chosen, duration = cheapest_text_model(self.service.list_models())
        else:
            found = self.service.get_model(model)
            if found is None:
                raise NotFoundError(
                    f"model {model!r} not found",
                    code="model_not_found",
                    hint="list the models with: videogen models",
                )
            chosen, duration = cheapest_text_model([found])
        prepared = self.service.prepare(
            user_id=self._user.user_id,
            model_ref=chosen.slug,
            prompt=prompt,
            image_url=None,
            settings={"duration": duration},
        )
        return SmokeRequest(chosen.slug, duration, prepared.cost, prompt)

    def principal(self) -> Principal:
        return self._user

    def books(self) -> JobService:
        return self.service

    def candidate_books(self) -> JobService:
        return self.service

    def confirm_books(self, job_id: str, who: Principal) -> bool:
        return True

    @property
    def books_confirmed(self) -> bool:
        return True

    def poor_principal(self, user_id: str) -> Principal | str:
        return Principal(user_id)

    def set_deadline(self, monotonic_deadline: float) -> None:
        # Only waiting is bounded by the check's deadline (`wait` hands what is left to
        # the core's watch). A create or a single read runs with the adapter's own
        # timeouts and safe retries, so a short deadline never cuts a submission short.
        pass

    def create(self, who: Principal, request: SmokeRequest, key: str) -> CreateAnswer:
        self.service.set_deadline(None)  # an earlier watch's deadline is not this call's
        try:
            prepared = self.service.prepare(
                user_id=who.user_id,
                model_ref=request.model,
                prompt=request.prompt,
                image_url=None,
                settings={"duration": request.duration},
            )
            outcome = self.service.generate(prepared, key)
        except (RefusedError, NotFoundError, UsageError) as exc:
            return CreateAnswer(
                ok=False,
                shown=f"refused with exit {exc.exit_code} ({exc.code}): {exc.message}",
                refusal=exc.code,
            )
        except BackendError as exc:
            raise TargetUnreachable(exc.message, hint=exc.hint) from exc
        job = outcome.job
        if isinstance(outcome.submit_error, ProviderError):
            raise TargetUnreachable(
                f"the provider could not be reached ({outcome.submit_error.message}); "
                f"job {job.job_id} was failed and refunded"
            )
        shown = f"job {job.job_id} {job.status.value}, {job.credits_used} credits"
        if outcome.replayed:
            shown += ", replayed"
        if job.error:
            shown += f" ({job.error})"
        return CreateAnswer(
            ok=True,
            shown=shown,
            job_id=job.job_id,
            status=job.status,
            credits_used=job.credits_used,
            replayed=outcome.replayed,
            replay_marker="replayed: true" if outcome.replayed else None,
        )

    def status(self, job_id: str, who: Principal) -> JobView:
        self.service.set_deadline(None)
        try:
            outcome = self.service.refresh(job_id)
        except ProviderError as exc:
            if exc.code == "provider_auth":
                raise TargetUnreachable(exc.message, hint=exc.hint) from exc
            raise
        except BackendError as exc:
            raise TargetUnreachable(exc.message, hint=exc.hint) from exc
        return JobView.of(outcome.job, outcome.transient_error)

    def wait(
        self, job_id: str, who: Principal, timeout: float, backoff: Backoff, on_poll: OnPoll
    ) -> JobView:
        reporter = _PollForwarder(on_poll)
        try:
            result: WatchResult = watch(
                self.service, [job_id], timeout=timeout, backoff=backoff, reporter=reporter
            )
        except BackendError as exc:
            raise TargetUnreachable(exc.message, hint=exc.hint) from exc
        return JobView.of(result.jobs[job_id])

    def close(self) -> None:
        self.service.close()


class _PollForwarder:
    """The core's WatchReporter, turned into the checks' one callback."""

    def __init__(self, on_poll: OnPoll) -> None:
        self.on_poll = on_poll

    def polled(self, job: Job, *, changed: bool, transient_error: str | None) -> None:
        self.on_poll(JobView.of(job, transient_error))

    def waiting(self, seconds: float) -> None:
        pass


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, VideogenError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
