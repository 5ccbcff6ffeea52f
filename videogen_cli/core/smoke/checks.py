"""The backend plan's test list as named checks (README "CI: videogen smoke").

Each check stands alone: it gets its own deadline, and whatever it raises becomes its
own result, so one failure never hides another. Checks that need a job share the one
made by `create_pending` (a replay needs the key of an earlier request anyway), and
say so when it is missing. Nothing here prints: progress goes to a `SmokeReporter`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from videogen_cli.core.jobs import JobService, SystemClock
from videogen_cli.core.refunds import refund
from videogen_cli.core.smoke import (
    DEFAULT_CHECK_TIMEOUT,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_POLL_MAX_INTERVAL,
)
from videogen_cli.core.smoke.results import CHECK_NAMES, CheckResult, CheckStatus, SmokeReport
from videogen_cli.core.smoke.targets import (
    CreateAnswer,
    JobView,
    Principal,
    SmokeRequest,
    Target,
    TargetUnreachable,
    describe_error,
)
from videogen_cli.core.watching import Backoff
from videogen_cli.domain import JobStatus, LedgerKind
from videogen_cli.errors import VideogenError
from videogen_cli.ports import Clock

# Everything smoke writes to a ledger names it, so a person reading the books knows.
OPERATOR = "videogen-smoke"
# A smoke user is a UUIDv5 of the run id under this namespace: the same run id always
# gives the same throwaway user, so a retried CI job never funds a second one.
SMOKE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://videogen.invalid/smoke")
FAIL_WORD = "sim:fail"  # the simulator's word for "generation fails" (README "The sandbox")
# Credits granted to the funded smoke user, in jobs' worth: the job of create_pending
# and the failing job can be charged at once; one more is margin.
FUNDED_JOBS = 3
LEDGER_LIMIT = 1000


class CheckFailed(Exception):
    """What was expected, and what came back."""


class CheckSkipped(Exception):
    """Why the check could not run against this target."""


class SmokeReporter(Protocol):
    def started(self, name: str) -> None: ...

    def progress(self, name: str, state: str) -> None: ...

    def finished(self, result: CheckResult) -> None: ...


class SilentReporter:
    def started(self, name: str) -> None:
        pass

    def progress(self, name: str, state: str) -> None:
        pass

    def finished(self, result: CheckResult) -> None:
        pass


def smoke_user_ids(run_id: str) -> tuple[str, str]:
    """(funded user, user without credits) for a run: fixed, recognisable by run id."""
    funded = uuid.uuid5(SMOKE_NAMESPACE, f"videogen-smoke/{run_id}/funded")
    poor = uuid.uuid5(SMOKE_NAMESPACE, f"videogen-smoke/{run_id}/no-credits")
    return str(funded), str(poor)


@dataclass(frozen=True)
class SmokeOptions:
    run_id: str
    check_timeout: float = DEFAULT_CHECK_TIMEOUT
    backoff: Backoff = field(
        default_factory=lambda: Backoff(DEFAULT_POLL_INTERVAL, DEFAULT_POLL_MAX_INTERVAL, 2.0, True)
    )
    model: str | None = None


@dataclass(frozen=True)
class SmokePlan:
    """What a run will spend, shown before anything is spent on real fal."""

    request: SmokeRequest
    paid_jobs: int  # jobs that reach the provider (the failing job only where it can fail)
    credits: int | None  # credits those jobs cost, when the target's catalog says

    def describe(self) -> str:
        credits = "an unknown number of" if self.credits is None else str(self.credits)
        seconds = str(self.request.duration).removesuffix("s")
        return (
            f"{self.paid_jobs} job(s) of {self.request.model} ({seconds} s each), {credits} credits"
        )


class SmokeSession:
    """One smoke run: plan, fund, then every check in order."""

    def __init__(
        self, target: Target, options: SmokeOptions, *, clock: Clock | None = None
    ) -> None:
        self.target = target
        self.options = options
        self.clock: Clock = clock or SystemClock()
        self.nonce = uuid.uuid4().hex[:12]  # fresh keys per invocation, even for one run id
        self.request: SmokeRequest | None = None
        self.user: Principal = target.principal()
        self.poor_user_id = smoke_user_ids(options.run_id)[1]
        # Shared between checks: the job of create_pending.
        self.primary: CreateAnswer | None = None
        self.primary_error: str | None = None
        self.balance_before_primary: int | None = None
        # The failing job of failure_refunded_once, created as completes_with_video starts
        # waiting, so that both jobs run at once: against a target that never finishes a
        # job the two checks then take one deadline, not two.
        self._failing: _FailingJob | None = None
        self._reporter: SmokeReporter = SilentReporter()
        self._current = ""
        self.deadline = 0.0
        self.report = SmokeReport(
            mode=target.mode,
            target=target.description,
            environment=target.environment,
            run_id=options.run_id,
            user_id=self.user.user_id,
        )

    # --- before the checks --------------------------------------------------------------
    def plan(self) -> SmokePlan:
        prompt = f"videogen smoke check {self.options.run_id}: a paper boat on a calm lake"
        self.request = self.target.plan_request(self.options.model, prompt)
        self.report.environment = self.target.environment
        jobs = 1 if self.target.can_fail_on_purpose is False else 2
        credits = None if self.request.cost is None else jobs * self.request.cost
        return SmokePlan(self.request, jobs, credits)

    def fund(self) -> None:
        """Direct mode: fund the throwaway users once per run (an idempotent grant)."""
        books = self.target.books()
        if self.target.mode != "direct" or books is None or self.request is None:
            return
        self._grant(books, self.user.user_id, FUNDED_JOBS * (self.request.cost or 1))

    def _grant(self, books: JobService, user_id: str, credits: int) -> None:
        # The key is derived from the run and the user: a rerun never grants twice.
        key = f"videogen-smoke:{self.options.run_id}:{user_id}:grant"
        books.grant_credits(
            user_id,
            credits,
            f"videogen smoke run {self.options.run_id}",
            OPERATOR,
            idempotency_key=key,
        )

    # --- running -----------------------------------------------------------------------
    def run(self, reporter: SmokeReporter | None = None) -> SmokeReport:
        reporter = reporter or SilentReporter()
        if self.request is None:
            self.plan()
        checks: dict[str, Callable[[str], str]] = {
            "create_pending": self.create_pending,
            "replay_same_job": self.replay_same_job,
            "key_reuse_refused": self.key_reuse_refused,
            "insufficient_credits_refused": self.insufficient_credits_refused,
            "completes_with_video": self.completes_with_video,
            "failure_refunded_once": self.failure_refunded_once,
            "refund_once_and_invariant": self.refund_once_and_invariant,
        }
        assert tuple(checks) == CHECK_NAMES
        for name, check in checks.items():
            reporter.started(name)
            self._reporter, self._current = reporter, name
            started = self.clock.monotonic()
            self.deadline = started + self.options.check_timeout
            self.target.set_deadline(self.deadline)
            try:
                status, message = CheckStatus.PASSED, check(name)
            except CheckFailed as exc:
                status, message = CheckStatus.FAILED, str(exc)
            except CheckSkipped as exc:
                status, message = CheckStatus.SKIPPED, str(exc)
            except TargetUnreachable as exc:
                status, message = CheckStatus.FAILED, f"target unreachable: {exc.message}"
                self.report.unreachable = exc.message
            except VideogenError as exc:
                status, message = CheckStatus.FAILED, exc.message
            except Exception as exc:  # a check must never take the others down with it
                status, message = CheckStatus.FAILED, f"unexpected error: {describe_error(exc)}"
            result = CheckResult(name, status, self.clock.monotonic() - started, message)
            self.report.checks.append(result)
            reporter.finished(result)
        return self.report

    # --- helpers -----------------------------------------------------------------------
    def _progress(self, state: str) -> None:
        self._reporter.progress(self._current, state)

    def _req(self) -> SmokeRequest:
        assert self.request is not None
        return self.request

    def _key(self, what: str) -> str:
        return f"smoke-{self.options.run_id[:40]}-{self.nonce}-{what}"

    def _books(self) -> JobService | None:
        return self.target.books()

    def _balance(self, user_id: str) -> int | None:
        books = self._books()
        return None if books is None else books.get_balance(user_id)

    def _balance_before(self, user_id: str) -> int | None:
        """A balance read before a create: from where the job will be, if anywhere."""
        books = self.target.candidate_books()
        return None if books is None else books.get_balance(user_id)

    def _remaining(self) -> float:
        return self.deadline - self.clock.monotonic()

    def _wait(self, job_id: str, who: Principal) -> JobView:
        remaining = self._remaining()
        if remaining <= 0:
            return self.target.status(job_id, who)
        return self.target.wait(
            job_id,
            who,
            remaining,
            self.options.backoff,
            lambda view: self._progress(f"job {view.describe()}"),
        )

    def _need_primary(self, what: str) -> CreateAnswer:
        if self.primary is None or not self.primary.ok or self.primary.job_id is None:
            why = self.primary_error or (self.primary.shown if self.primary else "not created")
            raise CheckFailed(f"{what} needs the job of create_pending, which failed: {why}")
        return self.primary

    def _not_checked_balances(self) -> str:
        return (
            "balances not checked: the endpoints show none, and the configured backend is "
            "not the endpoint's"
        )

    # --- the checks --------------------------------------------------------------------
    def create_pending(self, name: str) -> str:
        request = self._req()
        self.balance_before_primary = self._balance_before(self.user.user_id)
        self._progress("creating a job")
        try:
            answer = self.target.create(self.user, request, self._key("create"))
        except VideogenError as exc:
            self.primary_error = exc.message
            raise
        self.primary = answer
        if not answer.ok or answer.job_id is None:
            self.primary_error = answer.shown
            raise CheckFailed(
                f"expected a new pending job charged {_credits(request.cost)}; got {answer.shown}"
            )
        self.target.confirm_books(answer.job_id, self.user)
        problems = []
        if answer.status is not JobStatus.PENDING:
            problems.append(f"status {answer.status_shown!r} instead of 'pending'")
        if answer.replayed:
            problems.append(f"a first request marked as a replay ({answer.replay_marker})")
        if request.cost is not None and answer.credits_used != request.cost:
            problems.append(f"credits_used {answer.credits_used} instead of {request.cost}")
        elif answer.credits_used is None or answer.credits_used <= 0:
            problems.append(f"credits_used {answer.credits_used!r}: nothing was charged")
        after = self._balance(self.user.user_id)
        before = self.balance_before_primary
        balance_note = self._not_checked_balances()
        if self._books() is not None and before is not None and after is not None:
            charged = before - after
            if charged != answer.credits_used:
                problems.append(
                    f"the balance moved by {charged} (from {before} to {after}) instead of "
                    f"{answer.credits_used}"
                )
            balance_note = f"balance {before} → {after}"
        if problems:
            raise CheckFailed(
                f"expected job {answer.job_id} pending with {_credits(request.cost)} charged; "
                f"got {'; '.join(problems)}"
            )
        return f"job {answer.job_id} pending, {answer.credits_used} credits charged; {balance_note}"

    def replay_same_job(self, name: str) -> str:
        first = self._need_primary("the replay")
        before = self._balance(self.user.user_id)
        self._progress("sending the same request again")
        answer = self.target.create(self.user, self._req(), self._key("create"))
        if not answer.ok:
            raise CheckFailed(
                f"expected job {first.job_id} again, marked as a replay; got {answer.shown}"
            )
        problems = []
        if answer.job_id != first.job_id:
            problems.append(
                f"a new job {answer.job_id} instead of {first.job_id} (a replay must never "
                "create a job)"
            )
        if not answer.replayed:
            marker = (
                "neither X-Idempotent-Replay nor Idempotent-Replayed: true among the headers"
                if self.target.mode == "http"
                else "replayed: false"
            )
            problems.append(f"the replay is not marked ({marker})")
        elif answer.replay_headers_missing:
            # The app's endpoints send both (README "For the iOS team: videogen serve"):
            # clients key on either spelling, so one alone leaves some of them blind.
            missing = " and ".join(f"{h}: true" for h in answer.replay_headers_missing)
            problems.append(
                f"the replay is marked only by {answer.replay_marker} ({missing} missing)"
            )
        if answer.credits_used != first.credits_used:
            problems.append(f"credits_used {answer.credits_used} instead of {first.credits_used}")
        elif first.body and answer.body != first.body:
            # A replay is the first answer, whatever it was, not the job as it is now.
            problems.append(
                f"a body other than the first answer's: {_changes(first.body, answer.body)}"
            )
        after = self._balance(self.user.user_id)
        balance_note = self._not_checked_balances()
        if self._books() is not None and before is not None and after is not None:
            if after != before:
                problems.append(f"the balance moved from {before} to {after}")
            balance_note = f"balance unchanged at {after}"
        if problems:
            raise CheckFailed(
                f"expected the same job {first.job_id}, marked as a replay, nothing charged; "
                f"got {'; '.join(problems)}"
            )
        return f"same job {first.job_id}, {answer.replay_marker}; {balance_note}"

    def key_reuse_refused(self, name: str) -> str:
        first = self._need_primary("reusing the key")
        before = self._balance(self.user.user_id)
        other = self._req().with_prompt(self._req().prompt + " (a different request)")
        self._progress("reusing the key with another request")
        answer = self.target.create(self.user, other, self._key("create"))
        expected = (
            "HTTP 422 idempotency_key_reused" if self.target.mode == "http" else "refused, exit 4"
        )
        if answer.ok or answer.refusal != "idempotency_key_reused":
            extra = ""
            if answer.ok and answer.job_id and answer.job_id != first.job_id:
                extra = f" (and a new job {answer.job_id} was created)"
            raise CheckFailed(
                f"expected the key of job {first.job_id} reused with another request to be "
                f"{expected}; got {answer.shown}{extra}"
            )
        after = self._balance(self.user.user_id)
        if self._books() is not None and before is not None and after != before:
            raise CheckFailed(
                f"expected nothing charged on a refused key; the balance moved from {before} "
                f"to {after}"
            )
        return f"refused: {answer.shown}"

    def insufficient_credits_refused(self, name: str) -> str:
        request = self._req()
        books = self._books()
        poor = self.target.poor_principal(self.poor_user_id)
        if isinstance(poor, str):
            raise CheckSkipped(poor)
        if books is not None and self.target.books_confirmed and (request.cost or 0) > 1:
            # 1 credit, less than a job: the user exists, so the refusal is about money.
            self._fund_poor(books)
        elif self.target.mode == "direct":
            raise CheckSkipped(
                f"a job of {request.model} costs {request.cost} credit: no user can have "
                "fewer credits than that and still exist"
            )
        before = self._balance(poor.user_id)
        jobs_before = self._job_count(poor.user_id)
        self._progress("generating for a user without enough credits")
        answer = self.target.create(poor, request, self._key("poor"))
        if poor.unsigned_reason is not None and answer.http_status == 401:
            raise CheckSkipped(poor.unsigned_reason)
        http = self.target.mode == "http"
        expected = "HTTP 402 insufficient_credits" if http else "refused, exit 4"
        refused = answer.refusal == "insufficient_credits"
        error = answer.body.get("error")
        unknown_user = (
            http
            and before is None
            and isinstance(error, dict)
            and error.get("code") == "user_not_found"
        )
        if answer.ok or not (refused or unknown_user):
            raise CheckFailed(
                f"expected a user with {before if before is not None else 'no'} credits to be "
                f"{expected} for a job of {_credits(request.cost)}; got {answer.shown}"
            )
        after = self._balance(poor.user_id)
        jobs_after = self._job_count(poor.user_id)
        if before is not None and after != before:
            raise CheckFailed(
                f"expected nothing charged on a refusal; the balance moved from {before} to {after}"
            )
        if jobs_after is not None and jobs_after != jobs_before:
            raise CheckFailed(
                f"expected no job for a refused request; user {poor.user_id} has "
                f"{jobs_after} job(s)"
            )
        checked = (
            f"balance unchanged at {after}, no job created"
            if after is not None
            else self._not_checked_balances()
        )
        return f"user {poor.user_id} refused: {answer.shown}; {checked}"

    def _fund_poor(self, books: JobService) -> None:
        self._grant(books, self.poor_user_id, 1)

    def _job_count(self, user_id: str) -> int | None:
        books = self._books()
        if books is None:
            return None
        return len(books.list_jobs(user_id, limit=LEDGER_LIMIT))

    def completes_with_video(self, name: str) -> str:
        first = self._need_primary("completing")
        assert first.job_id is not None
        self._failing = self._start_failing_job()
        view = self._wait(first.job_id, self.user)
        timeout = self.options.check_timeout
        if view.status is JobStatus.COMPLETED and view.video_url:
            return f"job {view.job_id} completed with {view.video_url}"
        if view.status is JobStatus.COMPLETED:
            raise CheckFailed(
                f"expected job {view.job_id} completed with a video URL; it completed with none"
            )
        if view.status is JobStatus.FAILED:
            raise CheckFailed(
                f"expected job {view.job_id} completed with a video URL; it failed: {view.error}"
            )
        note = f" (last poll: {view.note})" if view.note else ""
        raise CheckFailed(
            f"expected job {view.job_id} completed with a video URL within {timeout:g} s; "
            f"still {view.describe()} at the check's deadline{note}"
        )

    def failure_refunded_once(self, name: str) -> str:
        if self.target.can_fail_on_purpose is False:
            raise CheckSkipped(
                "the provider (real fal) cannot be told to fail; no paid job was spent on it"
            )
        failing, self._failing = self._failing or self._start_failing_job(), None
        if failing.error is not None:
            raise failing.error
        answer, before = failing.answer, failing.balance_before
        assert answer is not None and answer.job_id is not None
        # This check's deadline counts from when its job was created (it may have been
        # created while completes_with_video waited).
        self.deadline = min(self.deadline, failing.created_at + self.options.check_timeout)
        self.target.set_deadline(self.deadline)
        view = self._wait(answer.job_id, self.user)
        if view.status is JobStatus.COMPLETED:
            if self.target.can_fail_on_purpose is None:
                raise CheckSkipped(
                    f"the provider cannot be told to fail: the `{FAIL_WORD}` job {view.job_id} "
                    "completed"
                )
            raise CheckFailed(
                f"expected job {view.job_id} (`{FAIL_WORD}`) to fail and be refunded; it completed"
            )
        if view.status is not JobStatus.FAILED:
            raise CheckFailed(
                f"expected job {view.job_id} (`{FAIL_WORD}`) failed and refunded within "
                f"{self.options.check_timeout:g} s; still {view.describe()} at the deadline"
            )
        used = view.credits_used if view.credits_used is not None else answer.credits_used
        if not used or view.refunded_credits != used:
            raise CheckFailed(
                f"expected failed job {view.job_id} refunded in full (refunded_credits == "
                f"credits_used == {used}); got refunded_credits {view.refunded_credits}"
            )
        again = self.target.status(view.job_id, self.user)  # a second sync refunds nothing
        if again.refunded_credits != used or again.status is not JobStatus.FAILED:
            raise CheckFailed(
                f"expected job {view.job_id} to stay failed with {used} refunded; a second "
                f"read gave {again.describe()}, refunded_credits {again.refunded_credits}"
            )
        books = self._books()
        if books is None or before is None:
            return (
                f"job {view.job_id} failed and refunded {used} credits (from get-video-status); "
                f"{self._not_checked_balances()}"
            )
        after = books.get_balance(self.user.user_id)
        kinds = Counter(
            e.kind
            for e in books.list_ledger(self.user.user_id, limit=LEDGER_LIMIT)
            if e.job_id == view.job_id
        )
        if kinds[LedgerKind.CHARGE] != 1 or kinds[LedgerKind.REFUND] != 1 or after != before:
            raise CheckFailed(
                f"expected job {view.job_id} charged once and refunded once, the balance back "
                f"at {before}; the ledger has {kinds[LedgerKind.CHARGE]} charge(s) and "
                f"{kinds[LedgerKind.REFUND]} refund(s), the balance is {after}"
            )
        return f"job {view.job_id} failed, refunded {used} credits once; balance back at {after}"

    def _start_failing_job(self) -> _FailingJob:
        """Create the job failure_refunded_once follows; a failure is kept for that check."""
        if self.target.can_fail_on_purpose is False:
            return _FailingJob(None, None, self.clock.monotonic())
        try:
            request = self._req().with_prompt(f"{self._req().prompt} {FAIL_WORD}")
            before = self._balance_before(self.user.user_id)
            self._progress(f"creating a job that fails ({FAIL_WORD})")
            created_at = self.clock.monotonic()
            answer = self.target.create(self.user, request, self._key("fail"))
            if not answer.ok or answer.job_id is None:
                raise CheckFailed(
                    f"expected a new job for a `{FAIL_WORD}` prompt; got {answer.shown}"
                )
            self.target.confirm_books(answer.job_id, self.user)
        except Exception as exc:  # reported by failure_refunded_once, never by the caller
            return _FailingJob(None, None, self.clock.monotonic(), error=exc)
        return _FailingJob(answer, before, created_at)

    def refund_once_and_invariant(self, name: str) -> str:
        books = self._books()
        if books is None or not self.target.books_confirmed:
            raise CheckSkipped(
                "needs the backend's ledger, which the endpoints do not show, and the "
                "configured backend is not the endpoint's"
            )
        refund_note = self._refund_twice(books)
        users = [self.user.user_id, self.poor_user_id]
        broken = [p for user in users for p in _invariant_problems(books, user)]
        if broken:
            raise CheckFailed(f"expected the ledger invariant to hold; {'; '.join(broken)}")
        if refund_note.startswith("not tried"):
            raise CheckSkipped(f"operator refund {refund_note}; the ledger invariant holds")
        return f"{refund_note}; ledger invariant holds for the smoke users"

    def _refund_twice(self, books: JobService) -> str:
        first = self.primary
        if first is None or not first.ok or first.job_id is None:
            return "not tried: create_pending made no job"
        job = books.find_job(first.job_id)
        if job is None or job.status is not JobStatus.COMPLETED:
            state = job.status.value if job else "missing"
            return f"not tried: job {first.job_id} is {state}, not completed"
        reason = f"videogen smoke run {self.options.run_id}: refund once"
        before = books.get_balance(job.user_id)
        self._progress(f"refunding job {job.job_id}")
        once = refund(books, job.job_id, None, reason, OPERATOR)
        twice = refund(books, job.job_id, None, reason, OPERATOR)
        after = books.get_balance(job.user_id)
        problems = []
        if not once.refunded_now or once.refunded_credits != job.credits_used:
            problems.append(
                f"the first refund gave refunded_now={once.refunded_now}, "
                f"refunded_credits={once.refunded_credits} (expected true, {job.credits_used})"
            )
        if twice.refunded_now:
            problems.append("the second refund moved credits again")
        if before is not None and after != before + job.credits_used:
            problems.append(
                f"the balance went from {before} to {after} (expected {before + job.credits_used})"
            )
        if problems:
            raise CheckFailed(
                f"expected job {job.job_id} refunded once and the second refund a no-op; "
                f"{'; '.join(problems)}"
            )
        return f"job {job.job_id} refunded {job.credits_used} credits once, the second a no-op"


@dataclass
class _FailingJob:
    answer: CreateAnswer | None
    balance_before: int | None
    created_at: float  # monotonic
    error: Exception | None = None


def _invariant_problems(books: JobService, user_id: str) -> list[str]:
    """README "Money rules": balance == sum of the ledger, never negative, failed jobs
    refunded exactly once."""
    balance = books.get_balance(user_id)
    if balance is None:
        return []
    ledger = books.list_ledger(user_id, limit=LEDGER_LIMIT)
    problems = []
    total = sum(e.delta for e in ledger)
    if total != balance:
        problems.append(f"user {user_id}: balance {balance} but the ledger sums to {total}")
    if balance < 0:
        problems.append(f"user {user_id}: negative balance {balance}")
    refunds = Counter(e.job_id for e in ledger if e.kind is LedgerKind.REFUND)
    for job in books.list_jobs(user_id, limit=LEDGER_LIMIT):
        if refunds[job.job_id] > 1:
            problems.append(f"job {job.job_id}: {refunds[job.job_id]} refunds")
        if job.status is JobStatus.FAILED and (
            job.refunded_credits != job.credits_used or refunds[job.job_id] != 1
        ):
            problems.append(
                f"failed job {job.job_id}: refunded {job.refunded_credits} of "
                f"{job.credits_used} in {refunds[job.job_id]} ledger row(s)"
            )
    return problems


def _changes(first: dict[str, object], again: dict[str, object]) -> str:
    """What differs between two answers, field by field."""
    shown = []
    for key in sorted(set(first) | set(again)):
        if key not in again:
            shown.append(f"{key} missing (was {first[key]!r})")
        elif key not in first:
            shown.append(f"{key} {again[key]!r} added")
        elif first[key] != again[key]:
            shown.append(f"{key} {again[key]!r} instead of {first[key]!r}")
    return "; ".join(shown)


def _credits(cost: int | None) -> str:
    return "its credits" if cost is None else f"{cost} credits"
