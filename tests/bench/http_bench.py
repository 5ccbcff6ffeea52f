"""Issue 11's goals against the fal queue emulator over real HTTP, with real processes.

The CLI runs as ``videogen`` processes on the sandbox backend with ``FAL_KEY`` set and
``VIDEOGEN_FAL_QUEUE_URL`` pointing at tests/bench/fal_emulator.py (100 ms latency), so
sockets, the connection pool, process start-up and exit are all in the figures. The
moment each job completes is set in the emulator, and a lag is the process's exit time
minus that moment. Every ratio is of two figures measured in this run.

Also run: the stream edge cases (refused 404/405, quiet past the keep-alive, the
deadline, Ctrl-C, another provider's job), reported as pass/fail lines.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.fal_emulator import FalEmulator  # noqa: E402

LATENCY = 0.1
EXE = str(Path(sys.executable).parent / "videogen")


def _env(home: Path, emu: FalEmulator, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOGEN_", "FAL_"))}
    env.update(
        VIDEOGEN_HOME=str(home), FAL_KEY="bench-key", VIDEOGEN_FAL_QUEUE_URL=emu.url, **extra
    )
    return env


def _submit(home: Path, emu: FalEmulator, count: int) -> list[str]:
    """`count` jobs submitted to the emulator in-process (not measured: no latency)."""
    from videogen_cli.bootstrap import build_service
    from videogen_cli.catalog import DEMO_USER_ID
    from videogen_cli.config import load_settings

    latency, emu.latency = emu.latency, 0.0
    service = build_service(load_settings(_env(home, emu)))
    service.grant_credits(DEMO_USER_ID, 20 * count, "bench", f"bench-{uuid.uuid4()}")
    prepared = service.prepare(
        user_id=DEMO_USER_ID,
        model_ref="veo3.1",
        prompt="bench",
        image_url=None,
        settings={"duration": "4s"},
    )
    ids = [service.generate(prepared, str(uuid.uuid4())).job.job_id for _ in range(count)]
    service.close()
    emu.latency = latency
    return ids


def _run(args: list[str], env: dict[str, str], *, sigint_after: float | None = None) -> Any:
    """Run a process; its exit code, wall end time, peak RSS (MiB) and output."""
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if sigint_after is not None:
        time.sleep(sigint_after)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate()
    end = time.time()
    return proc.returncode, end, out, err


def _peak_rss_mib(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, proc.returncode, out.decode()


def one_job(emu: FalEmulator, *, generate: bool, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """One job, default flags; lag from completion to exit, requests to fal in all."""
    home = Path(tempfile.mkdtemp(prefix="vg-http-"))
    env = _env(home, emu)
    emu.run_seconds = 4.0
    if generate:
        emu.reset_counts()
        code, end, _out, err = _run(
            [EXE, "generate", "-p", "bench", "--duration", "4s", "--watch", *extra], env
        )
    else:
        (job_id,) = _submit(home, emu, 1)
        emu.reset_counts()
        emu.complete_at([emu.order[-1]], [time.time() + 4.0])
        code, end, _out, err = _run([EXE, "watch", job_id, *extra], env)
    done = emu.jobs[emu.order[-1]].complete_at
    return {
        "code": code,
        "lag": end - done,
        "requests": emu.counts.total,
        "kinds": dict(emu.counts.requests),
        "err": err,
    }


def many_jobs(emu: FalEmulator, count: int, spread: float, extra: tuple[str, ...] = ()) -> Any:
    home = Path(tempfile.mkdtemp(prefix="vg-http-"))
    env = _env(home, emu)
    ids = _submit(home, emu, count)
    rids = emu.order[-count:]
    start = time.time() + 3.0
    moments = [start + spread * i / max(1, count - 1) for i in range(count)]
    emu.complete_at(rids, moments)
    emu.reset_counts()
    code, end, out, _err = _run([EXE, "watch", *ids, "--json", *extra], env)
    return {
        "code": code,
        "lag": end - max(moments),
        "requests": emu.counts.total / count,
        "peak_conn": emu.counts.peak_connections,
        "peak_flight": emu.counts.peak_in_flight,
        "completed": out.count('"completed"'),
    }


def rss_500(emu: FalEmulator) -> tuple[float, int]:
    home = Path(tempfile.mkdtemp(prefix="vg-http-"))
    env = _env(home, emu)
    ids = _submit(home, emu, 500)
    emu.complete_at(emu.order[-500:], [time.time() + 5.0] * 500)
    emu.reset_counts()
    mib, _code, _out = _peak_rss_mib([EXE, "watch", *ids, "--json"], env)
    return mib, emu.counts.peak_connections


def startup(runs: int) -> dict[str, float]:
    """Median wall time of each command, in ms (interleaved runs). Bytecode may be
    written, as after any install's first run (PYTHONDONTWRITEBYTECODE=1 makes every
    run compile our modules again, ~10 ms more)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    bare_app = Path(__file__).with_name("bare_typer_app.py")
    cases = {
        "bare import typer, rich.console": [sys.executable, "-c", "import typer, rich.console"],
        "bare Typer app --help": [sys.executable, str(bare_app), "--help"],
        "videogen --help": [EXE, "--help"],
        "videogen generate --help": [EXE, "generate", "--help"],
    }
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for args in cases.values():  # warm up: disk cache and bytecode
        subprocess.run(args, capture_output=True, check=True, env=env)
    for _ in range(runs):
        for name, args in cases.items():
            t0 = time.perf_counter()
            subprocess.run(args, capture_output=True, check=True, env=env)
            samples[name].append((time.perf_counter() - t0) * 1000)
    return {k: statistics.median(v) for k, v in samples.items()}


def edges(emu: FalEmulator) -> list[tuple[str, bool, str]]:
    rows: list[tuple[str, bool, str]] = []
    polled = one_job(emu, generate=False, extra=("--no-stream",))
    for mode in ("404", "405"):
        emu.stream = mode
        r = one_job(emu, generate=False)
        emu.stream = "ok"
        ok = r["code"] == 0 and r["requests"] == polled["requests"] + 1
        rows.append(
            (
                f"stream refused {mode}: completes by polling",
                ok,
                f"exit {r['code']}, {r['requests']} requests {r['kinds']}"
                f" (--no-stream: {polled['requests']} {polled['kinds']})",
            )
        )
    # Quiet past the keep-alive: one event, then silence; the job completes at 30 s.
    emu.stream = "quiet"
    home = Path(tempfile.mkdtemp(prefix="vg-http-"))
    (job_id,) = _submit(home, emu, 1)
    emu.complete_at([emu.order[-1]], [time.time() + 30.0])
    emu.reset_counts()
    code, end, out, err = _run([EXE, "watch", job_id], _env(home, emu))
    emu.stream = "ok"
    lag = end - emu.jobs[emu.order[-1]].complete_at
    rows.append(
        (
            "stream quiet past keep-alive: falls back to polling",
            code == 0 and emu.counts.requests.get("status", 0) >= 1,
            f"exit {code}, lag {lag:.1f} s, {emu.counts.requests}",
        )
    )
    # The deadline bounds a stream.
    home = Path(tempfile.mkdtemp(prefix="vg-http-"))
    (job_id,) = _submit(home, emu, 1)
    emu.complete_at([emu.order[-1]], [time.time() + 600.0])
    t0 = time.time()
    code, end, out, err = _run([EXE, "watch", job_id, "--timeout", "5"], _env(home, emu))
    rows.append(
        (
            "watch --timeout 5 on a slow job: exit 6 within ~5 s",
            code == 6 and end - t0 < 7.0,
            f"exit {code} after {end - t0:.2f} s (process start included)",
        )
    )
    # Ctrl-C during a streamed watch.
    code, end, out, err = _run([EXE, "watch", job_id], _env(home, emu), sigint_after=2.0)
    rows.append(
        (
            "Ctrl-C during a streamed watch: exit 130 + resume hint",
            code == 130 and f"videogen watch {job_id}" in err,
            f"exit {code}; stderr {err.strip().splitlines()[-1:]!r}",
        )
    )
    # Another provider's job (made by the simulator) is not streamed, nor polled at fal.
    home = Path(tempfile.mkdtemp(prefix="vg-http-"))
    sim_env = {**_env(home, emu), "VIDEOGEN_PROVIDER": "simulator", "VIDEOGEN_SIM_SPEED": "0.01"}
    sim_env.pop("FAL_KEY")
    code, end, out, err = _run([EXE, "generate", "-p", "x", "--duration", "4s", "--json"], sim_env)
    import json

    other = json.loads(out)["job_id"]
    emu.reset_counts()
    code, end, out, err = _run([EXE, "watch", other, "--timeout", "10"], _env(home, emu))
    rows.append(
        (
            "another provider's job: no request to fal",
            emu.counts.total == 0,
            f"exit {code}, {emu.counts.total} requests; {err.strip().splitlines()[-1:]!r}",
        )
    )
    return rows


def main() -> None:
    print("\n-- issue 11 over real HTTP (fal emulator, 100 ms latency, real processes) --")
    with FalEmulator(latency=LATENCY) as emu:
        gen = [one_job(emu, generate=True) for _ in range(3)]
        watch1 = [one_job(emu, generate=False) for _ in range(3)]
        polled = one_job(emu, generate=False, extra=("--no-stream",))
        lag_g = statistics.median(r["lag"] for r in gen)
        lag_w = statistics.median(r["lag"] for r in watch1)
        print(
            f"generate --watch, defaults   lag {lag_g:5.2f} s  requests {gen[0]['requests']}"
            f" {gen[0]['kinds']}   goal < 1 s, <= 4"
        )
        print(
            f"watch ID, defaults           lag {lag_w:5.2f} s  requests {watch1[0]['requests']}"
            f" {watch1[0]['kinds']}"
        )
        print(
            f"watch ID --no-stream         lag {polled['lag']:5.2f} s  requests"
            f" {polled['requests']} {polled['kinds']}"
        )
        many = many_jobs(emu, 200, 10.0)
        print(
            f"200 jobs over 10 s           exit lag {many['lag']:5.2f} s  ratio to one job"
            f" {many['lag'] / lag_w:.2f} (goal <= 1.5)  requests/job {many['requests']:.2f}"
            f"  peak connections {many['peak_conn']}, in flight {many['peak_flight']}"
            f" (goal <= 32)  exit {many['code']}, {many['completed']} completed"
        )
        polled200 = many_jobs(emu, 200, 10.0, ("--no-stream",))
        emu.stream = "404"
        refused200 = many_jobs(emu, 200, 10.0)
        emu.stream = "ok"
        for name, r in (
            ("200 jobs --no-stream", polled200),
            ("200 jobs, stream refused", refused200),
        ):
            print(
                f"{name:<28} exit lag {r['lag']:5.2f} s  requests/job {r['requests']:.2f}"
                f"  peak connections {r['peak_conn']}, in flight {r['peak_flight']}"
                f"  exit {r['code']}, {r['completed']} completed"
            )
        mib, conns = rss_500(emu)
        print(
            f"500 jobs (watch --json)      peak RSS {mib:5.1f} MiB (goal <= 100)"
            f"  peak connections {conns}"
        )
        for name, ok, detail in edges(emu):
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    figures = startup(15)
    base = figures["bare import typer, rich.console"]
    for name, wall in figures.items():
        print(f"{name:<34} median {wall:6.0f} ms ({wall / base:.2f}x)")
    print("goals: videogen --help <= 1.3x, videogen generate --help <= 1.5x")


if __name__ == "__main__":
    main()
