"""Hostile input never costs money, never hangs and never crashes (README "Exit codes").

A property-based test (hypothesis) drives every command that reads or moves money with
generated arguments and configuration: random text with lone surrogates (what Python
makes of undecodable bytes), control characters, huge and negative numbers, nan and inf,
malformed UUIDs, broken URLs. For every invocation it asserts:

- the exit code is one of README's (never 70, the "bug" exit), and no traceback;
- it returns within a bound (a nan deadline used to poll forever);
- a refusal (exit 2, 3, 4, 5) leaves every balance and every ledger row exactly as they
  were, read back from the sandbox file; exits 1 and 6 (a job that was created and then
  failed, or is still running) keep the ledger invariant: each balance is the sum of its
  ledger, each failed job refunded exactly once.

The explicit cases below are the reproduced failures of the money-safety issue; each
one failed (exit 70, a charge before the refusal, or a hang) before the fix.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.support import pgcluster
from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.cli.main import app
from videogen_cli.core.watching import Backoff

README_EXITS = {0, 1, 2, 3, 4, 5, 6, 130}
INVOCATION_BOUND_SECONDS = 60  # the slowest legal invocation here takes ~1 s
FAST_WATCH = ["--interval", "0.01", "--max-interval", "0.02"]

# --- reading the store back ------------------------------------------------------------

Rows = list[tuple[Any, ...]]
BALANCES = "select user_id, balance from user_credits order by 1"
LEDGER = "select id, user_id, job_id, delta, kind, reason, operator from credit_ledger order by id"


class SandboxFile:
    """What `check_one` reads back: every balance and ledger row, and the invariant."""

    def __init__(self, home: Path) -> None:
        self.path = home / "sandbox.sqlite3"

    def snapshot(self) -> tuple[Rows, Rows]:
        con = sqlite3.connect(self.path)
        try:
            return con.execute(BALANCES).fetchall(), con.execute(LEDGER).fetchall()
        finally:
            con.close()

    def invariant_problems(self) -> list[str]:
        return pgcluster.sqlite_invariant_problems(self.path)


def snapshot(home: Path) -> tuple[Rows, Rows]:
    return SandboxFile(home).snapshot()


# --- running one invocation, bounded -----------------------------------------------------


class InvocationHung(BaseException):
    """Raised by the alarm: BaseException, so no `except Exception` in the CLI eats it."""


@contextmanager
def bounded(seconds: int) -> Iterator[None]:
    def fire(signum: int, frame: FrameType | None) -> None:
        raise InvocationHung(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def invoke(args: list[str], env: dict[str, str | None] | None = None) -> Any:
    with bounded(INVOCATION_BOUND_SECONDS):
        return CliRunner().invoke(app, args, env=env)


class Store(Protocol):
    def snapshot(self) -> tuple[Rows, Rows]: ...

    def invariant_problems(self) -> list[str]: ...


def check_one(store: Store, args: list[str], env: dict[str, str | None] | None = None) -> int:
    """Run once and assert the properties of the module docstring; returns the exit code."""
    before = store.snapshot()
    result = invoke(args, env)
    shown = f"args={args!r} env={env!r}\n{result.output}"
    assert result.exit_code in README_EXITS, shown
    assert "Traceback" not in result.output, shown
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), shown
    if result.exit_code in (2, 3, 4, 5, 130):
        assert store.snapshot() == before, f"a refusal moved money: {shown}"
    assert store.invariant_problems() == [], shown
    if "--json" in args and result.exit_code != 0 and result.stdout:
        # The last line is the error object or the final job (README "JSON output"); a
        # parser error (Typer's own, exit 2) prints nothing on stdout in-process.
        last = json.loads(result.stdout.splitlines()[-1])
        assert "error" in last or "status" in last, shown
    return int(result.exit_code)


# --- the jobs every example can aim at ---------------------------------------------------


def run_json(*args: str, code: int = 0) -> dict[str, Any]:
    result = invoke([*args, "--json"])
    assert result.exit_code == code, result.output
    parsed: dict[str, Any] = json.loads(result.stdout.splitlines()[0])
    return parsed


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A sandbox made once per module: a completed job, a failed (refunded) one, a slow
    one, a funded user. Each test gets a copy (`targets`), so each starts the same."""
    home = tmp_path_factory.mktemp("hostile") / "home"
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("VIDEOGEN_", "SUPABASE_")) or name == "FAL_KEY":
                mp.delenv(name)
        mp.setenv("VIDEOGEN_HOME", str(home))
        mp.setenv("VIDEOGEN_SIM_SPEED", "1000")
        done = run_json("generate", "--prompt", "a boat", "--duration", "4s")["job_id"]
        assert invoke(["watch", done, *FAST_WATCH]).exit_code == 0
        failed = run_json("generate", "--prompt", "sim:refuse boat", "--duration", "4s", code=1)
        pending = run_json("generate", "--prompt", "sim:slow boat", "--duration", "4s")["job_id"]
        user = str(uuid.uuid4())
        run_json("grant", "--user", user, "--credits", "50", "--reason", "setup", "--yes")
        # Enough for every generated `generate` to be charged when its input is legal.
        run_json(
            "grant", "--user", DEMO_USER_ID, "--credits", "100000", "--reason", "setup", "--yes"
        )
    return home, {"done": done, "failed": failed["job_id"], "pending": pending, "user": user}


@pytest.fixture
def targets(template: tuple[Path, dict[str, str]], isolated_env: Path) -> dict[str, str]:
    home, jobs = template
    shutil.copytree(home, isolated_env)
    return jobs


# --- strategies ------------------------------------------------------------------------

SPECIAL_TEXT = [
    "",
    " ",
    "\udcff",
    "a\udcffb",
    "\udc80\udc80",
    "a\x00b",
    "\x1b[2J\x07",
    "\t\n\r",
    "x" * 6000,
    "-1",
    "nan",
    "--json",
    "sim:refuse",
    "sim:fail",
    "é" * 300,
    "\u202e\ufeff",
]
hostile_text = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    # Mostly plain text with lone surrogates (undecodable bytes) and control characters.
    st.text(
        st.one_of(st.characters(categories=["Cs", "Cc"]), st.sampled_from("ab -:")),
        min_size=1,
        max_size=12,
    ),
    # Every category.
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Co", "L", "M", "N", "P", "S", "Z"])),
)
BAD_NUMBERS = [
    "0",
    "-0",
    "-1",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e308",
    "-1e308",
    "1e-308",
    "1e999",
    "99999999999999999999999",
    "0x10",
    "abc",
    "",
    " ",
    "\udcff",
    "1_0",
    "3601",
    "604801",
]
hostile_number = st.one_of(
    st.sampled_from(BAD_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


Pair = tuple[st.SearchStrategy[str], st.SearchStrategy[str]]  # (legal, hostile)


def small_or_hostile(low: float, high: float) -> Pair:
    """A small legal value (so a legal watch ends quickly), or a hostile one."""
    return st.floats(min_value=low, max_value=high).map(repr), st.sampled_from(BAD_NUMBERS)


def option_pair(flag: str, value: str) -> list[str]:
    return [flag, value]


def command(
    head: list[str],
    required: dict[str, Pair],
    optional: dict[str, Pair],
    flag_names: tuple[str, ...] = ("--json",),
) -> st.SearchStrategy[list[str]]:
    """A legal invocation with at most two fields made hostile.

    Required fields are positional when their name starts with "#", options otherwise.
    Keeping the rest legal lets the hostile value travel as far as it can (into the
    store, to the provider), which is where it used to do harm.
    """
    names = sorted([*required, *optional])

    def build(bad: frozenset[str]) -> st.SearchStrategy[list[str]]:
        parts: list[st.SearchStrategy[list[str]]] = []
        for name, (legal, hostile) in [*required.items(), *optional.items()]:
            drawn = hostile if name in bad else legal
            if name.startswith("#"):
                parts.append(drawn.map(lambda v: [v]))
                continue
            as_option = drawn.map(partial(option_pair, name))
            parts.append(
                as_option if name in bad or name in required else st.one_of(st.just([]), as_option)
            )
        parts.append(st.lists(st.sampled_from(flag_names), unique=True))
        return st.tuples(*parts).map(lambda ps: [*head, *(a for p in ps for a in p)])

    return st.frozensets(st.sampled_from(names), max_size=2).flatmap(build)


def invocations(t: dict[str, str]) -> st.SearchStrategy[list[str]]:
    text, number = hostile_text, hostile_number
    job: Pair = (
        st.sampled_from([t["done"], t["failed"], t["pending"], str(uuid.uuid4())]),
        st.one_of(
            st.sampled_from([t["done"].upper(), "{" + t["done"] + "}", t["done"] + "\udcff"]),
            st.sampled_from(["not-a-uuid", "", "00000000-0000-0000-0000-000000000000"]),
            text,
        ),
    )
    user: Pair = (
        st.sampled_from([DEMO_USER_ID, t["user"], str(uuid.uuid4())]),
        st.one_of(st.sampled_from(["nobody", "", DEMO_USER_ID + "0"]), text),
    )
    watching = {
        "--timeout": small_or_hostile(2.0, 20.0),
        "--interval": small_or_hostile(0.001, 0.02),
        "--max-interval": small_or_hostile(0.02, 0.05),
        "--factor": small_or_hostile(1.0, 10.0),
    }
    generate = {
        "--prompt": (st.sampled_from(["a paper boat", "sim:fail boat", "sim:refuse"]), text),
        "--duration": (st.sampled_from(["4s", "8s", "4"]), number),
    }
    generate_options = {
        "--model": (st.sampled_from(["veo3.1", "sora-2-t2v"]), text),
        "--user": user,
        "--idempotency-key": (st.sampled_from(["order-hostile-1", "order-hostile-2"]), text),
        "--resolution": (st.just("720p"), text),
        "--aspect-ratio": (st.just("16:9"), text),
    }
    refund = {"#job": job, "--reason": (st.just("blank video"), text)}
    grant = {"--credits": (st.sampled_from(["5", "1000000"]), number)}
    grant["--reason"] = (st.just("ci funding"), text)
    operator: Pair = (st.just("alice"), text)
    return st.one_of(
        command(["generate"], generate, generate_options, ("--json",)),
        command(
            ["generate", "--watch"],
            generate,
            {**generate_options, **watching},
            ("--json", "--no-jitter"),
        ),
        command(["watch"], {"#job": job}, watching, ("--json", "--no-jitter")),
        command(["watch"], {"#job": job, "#job2": job}, watching, ("--json",)),
        command(["status"], {"#job": job}, {}, ("--json", "--no-sync")),
        command(
            ["refund"],
            refund,
            {
                "--credits": (st.sampled_from(["1", "8", "16", "17"]), number),
                "--operator": operator,
            },
            ("--json", "--yes", "--dry-run"),
        ),
        command(["refund", "--yes"], refund, {"--operator": operator}, ("--json",)),
        command(
            ["grant", "--yes"],
            grant,
            {
                "--user": user,
                "--operator": operator,
                "--idempotency-key": (st.just("grant-key-0001"), text),
            },
        ),
        command(["grant"], grant, {"--user": user}, ("--json", "--yes")),
        command(
            ["replay-key"], {"#key": (st.just("order-hostile-1"), text)}, {}, ("--json", "--show")
        ),
        command(["credits"], {}, {"--user": user, "--limit": (st.just("5"), number)}),
        command(["jobs"], {}, {"--user": user, "--limit": (st.just("5"), number)}),
    )


CONFIG_VALUES: dict[str, list[str]] = {
    "VIDEOGEN_FAL_QUEUE_URL": [
        "not a url",
        "http://[::1",
        "\udcff",
        "ftp://queue",
        "http://",
        "https://:80",
        "http://localhost:99999",
        "https://queue.fal.run/\x7f",
        "//queue.fal.run",
    ],
    "VIDEOGEN_DATABASE_URL": ["\udcff", "not a url", "postgresql://u@h:port/db", "mysql://h/db"],
    "SUPABASE_URL": ["\udcff", "not a url", "https://"],
    "VIDEOGEN_SUBMIT_GRACE_SECONDS": ["nan", "inf", "-1", "0", "1e308", "\udcff", "ten"],
    "VIDEOGEN_SIM_SPEED": ["nan", "inf", "-1", "0", "1e308", "1e-300", "\udcff"],
    "FAL_KEY": ["bad key", "\udcff", "k\x7f", "clé:secret", "key\twith tab"],
    "VIDEOGEN_PROVIDER": ["\udcff", "fall", "simulator!"],
    "VIDEOGEN_USER_ID": ["\udcff", "nobody", ""],
    "VIDEOGEN_OPERATOR": ["\udcff", "x" * 500, " "],
    "VIDEOGEN_HOME": ["\udcff"],
}
NO_ENV: dict[str, str] = {}
hostile_env: st.SearchStrategy[dict[str, str]] = st.one_of(
    st.just(NO_ENV),
    st.just(NO_ENV),
    st.sampled_from(sorted(CONFIG_VALUES)).flatmap(
        lambda name: st.sampled_from(CONFIG_VALUES[name]).map(lambda value: {name: value})
    ),
)


# --- the property --------------------------------------------------------------------------


def test_hostile_invocations_never_crash_hang_or_move_money_when_refused(
    isolated_env: Path, targets: dict[str, str]
) -> None:
    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,  # the same examples on every run: a red build is reproducible
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(args=invocations(targets), env=hostile_env)
    def one(args: list[str], env: dict[str, str]) -> None:
        code = check_one(SandboxFile(isolated_env), args, dict(env))
        event(f"{args[0]} exit {code}")  # shown by pytest --hypothesis-show-statistics

    one()


# --- the reproduced failures, one by one ------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        ["--watch", "--timeout", "0"],
        ["--watch", "--timeout", "nan"],
        ["--watch", "--timeout", "1e308"],
        ["--watch", "--interval", "nan"],
        ["--watch", "--interval", "inf"],
        ["--watch", "--max-interval", "nan"],
        ["--watch", "--factor", "nan"],
        ["--watch", "--factor", "11"],
        ["--watch", "--interval", "3601", "--max-interval", "3601"],
        ["--timeout", "nan"],  # bad input even without --watch
    ],
)
def test_bad_watch_options_are_refused_before_the_charge(
    extra: list[str], isolated_env: Path
) -> None:
    before = snapshot(isolated_env) if (isolated_env / "sandbox.sqlite3").exists() else None
    result = invoke(["generate", "--prompt", "a boat", "--duration", "4s", *extra, "--json"])
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["error"]["code"] == "invalid_input"
    assert "submitting" not in result.output
    after = snapshot(isolated_env)
    assert before in (None, after)
    assert after[1] == [(1, DEMO_USER_ID, None, 100, "grant", "sandbox seed", "videogen")]


@pytest.mark.parametrize(
    ("option", "value"),
    [("--timeout", "nan"), ("--timeout", "1e308"), ("--timeout", "0"), ("--interval", "nan")],
)
def test_watch_refuses_endless_or_overflowing_waits(
    option: str, value: str, targets: dict[str, str]
) -> None:
    result = invoke(["watch", targets["pending"], option, value, "--json"])
    assert result.exit_code == 2, result.output
    assert option in json.loads(result.stdout)["error"]["message"]


def test_backoff_never_overflows_past_its_cap() -> None:
    """The 1024th poll of `--interval 0.01 --max-interval 0.01` used to raise
    OverflowError: the exponent is capped, so any attempt number is fine."""
    fast = Backoff(interval=0.01, max_interval=0.01, factor=2.0, jitter=False)
    assert [fast.delay(n, lambda: 0.5) for n in (0, 1024, 10**9)] == [0.01] * 3
    default = Backoff(jitter=False)
    assert [default.delay(n, lambda: 0.5) for n in (0, 1, 2, 3, 5000)] == [5, 10, 20, 20, 20]
    steep = Backoff(interval=0.001, max_interval=3600, factor=1.0000001, jitter=True)
    assert steep.delay(10**12, lambda: 1.0) == 3600


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("VIDEOGEN_FAL_QUEUE_URL", "not a url", "config_invalid"),
        ("VIDEOGEN_FAL_QUEUE_URL", "http://[::1", "config_invalid"),
        ("VIDEOGEN_FAL_QUEUE_URL", "\udcff", "config_invalid"),
        ("VIDEOGEN_FAL_QUEUE_URL", "ftp://queue.fal.run", "config_invalid"),
        ("VIDEOGEN_DATABASE_URL", "\udcff", "config_invalid"),
        ("VIDEOGEN_DATABASE_URL", "postgresql://u:pw@db:port/app", "config_invalid"),
        ("SUPABASE_URL", "\udcff", "config_invalid"),
        ("VIDEOGEN_SUBMIT_GRACE_SECONDS", "nan", "config_invalid"),
        ("VIDEOGEN_SUBMIT_GRACE_SECONDS", "inf", "config_invalid"),
        ("VIDEOGEN_SUBMIT_GRACE_SECONDS", "1e308", "config_invalid"),
        ("VIDEOGEN_SIM_SPEED", "nan", "config_invalid"),
        ("VIDEOGEN_SIM_SPEED", "0", "config_invalid"),
        ("FAL_KEY", "clé secrète", "provider_auth"),
        ("VIDEOGEN_OPERATOR", "\udcff", "config_invalid"),
    ],
)
def test_configuration_that_cannot_work_is_refused_before_any_charge(
    name: str, value: str, code: str, isolated_env: Path
) -> None:
    result = invoke(
        ["generate", "--prompt", "a boat", "--duration", "4s", "--json"], env={name: value}
    )
    assert result.exit_code == 5, result.output
    error = json.loads(result.stdout)["error"]
    assert (error["code"], name in error["message"]) == (code, True)
    assert error["hint"]
    assert "pw" not in error["message"]  # a connection string is never repeated
    # Nothing was even opened: the refusal comes before the store.
    assert not (isolated_env / "sandbox.sqlite3").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "--prompt", "a boat \udcff\udcfe", "--duration", "4s"],
        ["generate", "--prompt", "a boat", "--idempotency-key", "order-\udcff-0001"],
        ["replay-key", "\udcff"],
        ["grant", "--credits", "5", "--reason", "\udcff", "--yes"],
        ["refund", "{done}", "--reason", "blank \udcff", "--yes"],
        ["refund", "{done}", "--reason", "blank", "--operator", "\udcff", "--yes"],
        ["status", "{done}\udcff"],
        ["watch", "{done}", "\udcff"],
        ["credits", "--user", "\udcff"],
        ["jobs", "--user", "\udcff"],
        ["generate", "--prompt", "a\x00boat", "--duration", "4s"],
    ],
)
def test_arguments_that_are_not_text_are_refused_before_anything_runs(
    args: list[str], targets: dict[str, str], isolated_env: Path
) -> None:
    args = [a.replace("{done}", targets["done"]) for a in args]
    before = snapshot(isolated_env)
    result = invoke([*args, "--json"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_text"
    assert "not valid text" in error["message"] and error["hint"]
    assert snapshot(isolated_env) == before


@pytest.mark.parametrize(
    "args",
    [
        ["refund", "{done}", "--reason", "x", "--credits", "0", "--yes"],
        ["refund", "{done}", "--reason", "x", "--credits", "-5", "--yes"],
        ["refund", "{done}", "--reason", "x", "--credits", "99999999999999999999", "--yes"],
        ["refund", "{done}", "--reason", "x", "--credits", "2147483648", "--dry-run"],
        ["grant", "--credits", "0", "--reason", "x", "--yes"],
        ["grant", "--credits", "1000001", "--reason", "x", "--yes"],
        ["grant", "--credits", "-1", "--reason", "x", "--yes"],
        ["grant", "--credits", "5", "--reason", "x" * 501, "--yes"],
        ["grant", "--credits", "5", "--reason", "x", "--operator", "o" * 101, "--yes"],
        ["grant", "--credits", "5", "--reason", "x", "--idempotency-key", "short", "--yes"],
    ],
)
def test_credits_out_of_bounds_are_refused_and_change_nothing(
    args: list[str], targets: dict[str, str], isolated_env: Path
) -> None:
    args = [a.replace("{done}", targets["done"]) for a in args]
    before = snapshot(isolated_env)
    result = invoke([*args, "--json"])
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["error"]["code"] == "invalid_input"
    assert snapshot(isolated_env) == before


@pytest.mark.parametrize("value", ["\udcff", "not a url", "postgresql://u:pw@db:port/app"])
def test_db_migrate_refuses_a_database_url_that_cannot_work(value: str) -> None:
    result = invoke(["db", "migrate", "--json"], env={"VIDEOGEN_DATABASE_URL": value})
    assert result.exit_code == 5, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "config_invalid" and "pw" not in error["message"]
