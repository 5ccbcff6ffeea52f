"""`make bench`: timing goals, measured here rather than asserted in tests.

Goals (a 2-core machine): `videogen --help` under 400 ms; a sandbox generate (charge,
submit to the simulator, record) under 50 ms in-process; a replay under 10 ms; ten
concurrent processes with one key under 5 s in all.

Then the `watch` and start-up figures of issue 11, each a ratio measured in this run
(tests/bench/watch_bench.py): lag and requests for one job with and without the status
stream, 200 jobs against one at 100 ms of fal latency, peak memory for 500 jobs, and
start-up against a bare `import typer, rich.console` and a bare Typer app.

Last, the same goals with real processes against a fal queue emulator over real HTTP
(tests/bench/http_bench.py), and the status stream's edge cases there.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def timed(fn: object, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(name: str, samples: list[float], goal_ms: float) -> None:
    median = statistics.median(samples)
    verdict = "ok" if median <= goal_ms else "SLOW"
    print(
        f"{name:<40} median {median:7.1f} ms  max {max(samples):7.1f} ms"
        f"  goal {goal_ms:5.0f} ms  {verdict}"
    )


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="videogen-bench-"))
    env = {**os.environ, "VIDEOGEN_HOME": str(home), "VIDEOGEN_SIM_SPEED": "1000"}
    cmd = [sys.executable, "-m", "videogen_cli"]
    row(
        "videogen --help (process start-up)",
        timed(
            lambda: subprocess.run([*cmd, "--help"], env=env, capture_output=True, check=True), 10
        ),
        400,
    )

    os.environ.update(VIDEOGEN_HOME=str(home), VIDEOGEN_SIM_SPEED="1000")
    from videogen_cli.bootstrap import build_service
    from videogen_cli.catalog import DEMO_USER_ID
    from videogen_cli.config import load_settings

    service = build_service(load_settings())
    service.grant_credits(DEMO_USER_ID, 100_000, "bench", "bench")
    keys: list[str] = []

    def generate() -> None:
        key = str(uuid.uuid4())
        keys.append(key)
        prepared = service.prepare(
            user_id=DEMO_USER_ID,
            model_ref="veo3.1",
            prompt="bench",
            image_url=None,
            settings={"duration": "4s"},
        )
        service.generate(prepared, key)

    row("generate on the sandbox (in-process)", timed(generate, 50), 50)

    def replay() -> None:
        prepared = service.prepare(
            user_id=DEMO_USER_ID,
            model_ref="veo3.1",
            prompt="bench",
            image_url=None,
            settings={"duration": "4s"},
        )
        service.generate(prepared, keys[0])

    row("replayed generate (in-process)", timed(replay, 50), 10)
    service.close()

    def ten_processes() -> None:
        key = str(uuid.uuid4())
        procs = [
            subprocess.Popen(
                [
                    *cmd,
                    "generate",
                    "-p",
                    "bench",
                    "--duration",
                    "4s",
                    "--idempotency-key",
                    key,
                    "--json",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(10)
        ]
        assert all(p.wait() == 0 for p in procs)

    row("10 processes, one key (wall time)", timed(ten_processes, 3), 5000)

    from tests.bench.watch_bench import main as watch_bench

    watch_bench()

    from tests.bench.http_bench import main as http_bench

    http_bench()


if __name__ == "__main__":
    main()
