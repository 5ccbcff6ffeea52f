"""A throwaway PostgreSQL cluster for the backend tests, and database helpers.

`start_cluster` runs initdb into a temporary folder and pg_ctl on 127.0.0.1 and a free
port, tuned for tests (no fsync). As root the cluster belongs to the `postgres` OS user,
because initdb and postgres refuse to run as root.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL server could be started here (the reason is the message)."""


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's layout."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    bindir: Path
    base: Path
    port: int
    run_as: str | None

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        _run(
            self,
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"],
            check=False,
        )
        shutil.rmtree(self.base, ignore_errors=True)


def _run(
    cluster: Cluster, argv: list[str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    what = Path(argv[0]).name
    if cluster.run_as:
        argv = ["runuser", "-u", cluster.run_as, "--", *argv]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, cwd=str(cluster.base), check=False
    )
    if check and result.returncode != 0:
        raise ClusterUnavailable(
            f"{what} failed: {(result.stderr or result.stdout).strip()[-500:]}"
        )
    return result


def start_cluster() -> Cluster:
    bindir = find_bindir()
    if bindir is None:
        raise ClusterUnavailable(
            "PostgreSQL server binaries (initdb) not found; run `make postgres`"
        )
    run_as = None
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            raise ClusterUnavailable("running as root without runuser to drop to `postgres`")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            raise ClusterUnavailable("running as root and no `postgres` OS user exists") from None
        run_as = "postgres"

    base = Path(tempfile.mkdtemp(prefix="videogen-pg-"))
    if run_as:
        shutil.chown(base, user=run_as)
    cluster = Cluster(bindir=bindir, base=base, port=0, run_as=run_as)
    try:
        _run(
            cluster,
            [
                str(bindir / "initdb"),
                "-D",
                str(cluster.datadir),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        )
        last_error = ""
        for _ in range(3):  # a free port can be taken between probe and bind
            cluster.port = _free_port()
            options = (
                f"-p {cluster.port} -k {base} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=120 -c shared_buffers=64MB"
            )
            result = _run(
                cluster,
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(cluster.datadir),
                    "-l",
                    str(base / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                check=False,
            )
            if result.returncode == 0:
                return cluster
            log = base / "server.log"
            last_error = log.read_text(errors="replace")[-500:] if log.exists() else result.stderr
        raise ClusterUnavailable(f"pg_ctl start failed: {last_error.strip()}")
    except BaseException:
        cluster.stop()
        raise


# --- databases ---------------------------------------------------------------------------


def with_dbname(dsn: str, dbname: str) -> str:
    return make_conninfo(dsn, dbname=dbname)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def create_database(admin_dsn: str, name: str, *, template: str | None = None) -> str:
    """Create `name` (as a copy of `template` if given); return its DSN."""
    query = sql.SQL("create database {}").format(sql.Identifier(name))
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if template:
            query = sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
            if conn.info.server_version >= 150000:
                # A small template is copied faster as files than through the WAL.
                query = query + sql.SQL(" strategy file_copy")
        conn.execute(query)
    return with_dbname(admin_dsn, name)


def drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def server_version(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.info.server_version)


# --- the money invariant, read straight from the tables ----------------------------------

# Portable SQL: runs on Postgres and on the sandbox's SQLite file alike.
INVARIANT_QUERIES: dict[str, str] = {
    "balance differs from the sum of the ledger": """
        select c.user_id, c.balance, coalesce(s.total, 0)
          from user_credits c
          left join (select user_id, sum(delta) as total from credit_ledger group by user_id) s
            on s.user_id = c.user_id
         where c.balance <> coalesce(s.total, 0)""",
    "negative balance": "select user_id, balance from user_credits where balance < 0",
    "failed job not refunded exactly once": """
        select j.job_id from video_jobs j
         where j.status = 'failed'
           and (select count(*) from credit_ledger l
                 where l.job_id = j.job_id and l.kind = 'refund') <> 1""",
    "job without exactly one charge of its cost": """
        select j.job_id from video_jobs j
         where (select count(*) from credit_ledger l
                 where l.job_id = j.job_id and l.kind = 'charge'
                   and l.delta = -j.credits_used) <> 1""",
    "refunded_credits differs from the refund row": """
        select j.job_id, j.refunded_credits from video_jobs j
         where j.refunded_credits <> coalesce((select l.delta from credit_ledger l
                 where l.job_id = j.job_id and l.kind = 'refund'), 0)""",
    "more than one refund for a job": """
        select job_id from credit_ledger where kind = 'refund'
         group by job_id having count(*) > 1""",
}


def _strip(query: str) -> str:
    return re.sub(r"\s+", " ", query).strip()


def postgres_invariant_problems(dsn: str) -> list[str]:
    problems = []
    with psycopg.connect(dsn) as conn:
        for name, query in INVARIANT_QUERIES.items():
            rows = conn.execute(_strip(query)).fetchall()
            if rows:
                problems.append(f"{name}: {rows[:5]}")
    return problems


def sqlite_invariant_problems(path: Path) -> list[str]:
    import sqlite3

    problems = []
    db = sqlite3.connect(str(path))
    try:
        for name, query in INVARIANT_QUERIES.items():
            rows = db.execute(_strip(query)).fetchall()
            if rows:
                problems.append(f"{name}: {rows[:5]}")
    finally:
        db.close()
    return problems


def ledger(dsn: str, user_id: str) -> list[tuple[str, int]]:
    """The user's ledger as (kind, delta), oldest first, read straight from the table."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select kind, delta from public.credit_ledger where user_id = %s order by id",
            (user_id,),
        ).fetchall()
    return [(str(k), int(d)) for k, d in rows]
