"""A throwaway PostgreSQL cluster for the lake's catalogue (tests, demo scale mode).

The lake store (aggregator/ingest/lake.py) keeps DuckLake's catalogue in
PostgreSQL. This module runs Debian's PostgreSQL (package postgresql, 15 on
bookworm; `make setup` installs it) as a private cluster: initdb into a
directory of its own, listening only on a Unix socket in that directory,
trust authentication for the superuser `postgres`, one database `wardprobe`.
PostgreSQL refuses to run as root, so when we are root the server runs as
the `postgres` system user (`runuser`) and its directory is that user's.

    python -m emulation.postgres start /tmp/wardprobe-pg   # prints the store spec
    python -m emulation.postgres stop /tmp/wardprobe-pg

Nothing here is for production: a real deployment's catalogue is a managed
PostgreSQL with passwords or certificates (docs/scaling.md).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

DATABASE = "wardprobe"
SUPERUSER = "postgres"
# The port only names the socket file (.s.PGSQL.<port>) in the cluster's own directory.
PORT = 5432


class PostgresMissing(RuntimeError):
    """Debian's PostgreSQL binaries (initdb, pg_ctl) are not installed."""


def postgres_bindir() -> Path:
    """The directory of initdb and pg_ctl: Debian keeps them out of PATH, in
    /usr/lib/postgresql/<major>/bin (the newest major wins). Raises
    PostgresMissing naming the package when there is none."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    if found is not None and shutil.which("pg_ctl") is not None:
        return Path(found).resolve().parent
    raise PostgresMissing(
        "PostgreSQL's initdb is not installed (Debian: apt-get install postgresql; "
        "`make setup` does it)"
    )


@dataclass(frozen=True)
class LakeLocation:
    """Where a lake lives: its catalogue's URI and its data files' directory."""

    catalogue_uri: str  # a libpq URI
    data_path: Path

    @property
    def store_spec(self) -> str:
        """The aggregator's `store` value for this lake (docs/scaling.md)."""
        return f"ducklake:{self.catalogue_uri}&data_path={self.data_path}"


class PostgresCluster:
    """initdb, start and stop one private cluster in `root` (created when
    missing; a cluster already in it is reused). `fsync=False` trades crash
    safety for speed: for tests, never for data anyone keeps."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.data_dir = root / "pgdata"
        self.socket_dir = root / "socket"
        self.log_file = root / "postgres.log"
        self._fsync = fsync
        self._bindir = postgres_bindir()
        # PostgreSQL will not run as root: then its files are the postgres user's.
        self._as_user = SUPERUSER if os.geteuid() == 0 else None

    @property
    def uri(self) -> str:
        """The libpq URI of the `wardprobe` database over the Unix socket."""
        return self.uri_of(DATABASE)

    def uri_of(self, database: str) -> str:
        """The libpq URI of one database of this cluster, over the Unix socket."""
        return f"postgres://{SUPERUSER}@/{database}?host={self.socket_dir}&port={PORT}"

    def lake(self, data_path: Path, database: str = DATABASE) -> LakeLocation:
        """A lake with its catalogue in `database` of this cluster and its files in `data_path`."""
        return LakeLocation(self.uri_of(database), data_path)

    def create_database(self, name: str) -> None:
        """A new, empty database (a lake of its own: a catalogue keeps one data path)."""
        self._run(
            str(self._bindir / "createdb"),
            "--host",
            str(self.socket_dir),
            "--port",
            str(PORT),
            "--username",
            SUPERUSER,
            name,
        )

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self._as_user, "--"] if self._as_user else []
        return subprocess.run([*prefix, *argv], check=True, capture_output=True, text=True, cwd="/")

    def _own(self, path: Path) -> None:
        if self._as_user is not None:
            entry = pwd.getpwnam(self._as_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        """initdb (the first time), start the server and create the database."""
        for directory in (self.root, self.socket_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._own(directory)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                str(self._bindir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-instructions",
                *(() if self._fsync else ("--no-sync",)),
            )
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' "
            f"-c port={PORT} -c max_connections=100"
        )
        if not self._fsync:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            str(self._bindir / "pg_ctl"),
            "--pgdata",
            str(self.data_dir),
            "--log",
            str(self.log_file),
            "--options",
            options,
            "--wait",
            "start",
        )
        exists = self.execute(
            "postgres", f"select 1 from pg_database where datname = '{DATABASE}'"
        ).strip()
        if exists != "1":
            self.create_database(DATABASE)

    def execute(self, database: str, sql: str) -> str:
        """Run SQL in one database as the superuser (psql); its output, unaligned."""
        return self._run(
            str(self._bindir / "psql"),
            "--host",
            str(self.socket_dir),
            "--port",
            str(PORT),
            "--username",
            SUPERUSER,
            "--tuples-only",
            "--no-align",
            "--set",
            "ON_ERROR_STOP=1",
            "--command",
            sql,
            database,
        ).stdout

    def stop(self, *, immediate: bool = False) -> None:
        """Stop the server: a fast shutdown ends open sessions and writes a
        checkpoint; an immediate one (a cluster about to be deleted) does not."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run(
                str(self._bindir / "pg_ctl"),
                "--pgdata",
                str(self.data_dir),
                "--mode",
                "immediate" if immediate else "fast",
                "--wait",
                "stop",
            )

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def throwaway_root(prefix: str = "wardprobe-pg-") -> Path:
    """A new directory the postgres user can reach: under /tmp (a test's own
    tmp_path sits below root's mode-0700 pytest directory, which it cannot)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def main(argv: list[str]) -> int:
    """`start DIR [DATA_PATH]` (prints the store spec) or `stop DIR`."""
    if len(argv) < 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m emulation.postgres start DIR [DATA_PATH] | stop DIR")
        return 2
    cluster = PostgresCluster(Path(argv[1]).absolute())
    if argv[0] == "stop":
        cluster.stop()
        return 0
    cluster.start()
    data = Path(argv[2]).absolute() if len(argv) > 2 else cluster.root / "lake-data"
    print(cluster.lake(data).store_spec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
