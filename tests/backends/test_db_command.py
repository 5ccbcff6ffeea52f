"""`videogen db sql` and `db migrate` where no database is needed to prove the point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# The CLI as installed, with psycopg made unimportable (as on an install without the
# postgres extra): `import psycopg` raises ImportError.
_WITHOUT_PSYCOPG = (
    "import sys; sys.modules['psycopg'] = None; "
    "from videogen_cli.cli.main import main; main(sys.argv[1:])"
)


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("VIDEOGEN_", "SUPABASE_", "FAL_"))
    }
    env |= {
        "VIDEOGEN_HOME": str(tmp_path),
        "VIDEOGEN_DATABASE_URL": "postgresql://videogen:s3cret@127.0.0.1:1/app",
    }
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_PSYCOPG, *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def test_db_migrate_without_the_driver_says_how_to_install_it(tmp_path: Path) -> None:
    proc = _run(["db", "migrate", "--json"], tmp_path)

    assert proc.returncode == 5, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "driver_missing"
    assert "pip install 'psycopg[binary]'" in error["hint"]
    assert "Traceback" not in proc.stderr and "s3cret" not in proc.stdout + proc.stderr

    human = _run(["db", "migrate"], tmp_path)
    assert human.returncode == 5
    assert "psycopg" in human.stderr and "Traceback" not in human.stderr


def test_db_sql_needs_no_driver(tmp_path: Path) -> None:
    proc = _run(["db", "sql"], tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert "create table if not exists public.video_jobs" in proc.stdout
    assert "function public.videogen_sweep_stranded(" in proc.stdout
    assert proc.stdout.rstrip().endswith("notify pgrst, 'reload schema';")
