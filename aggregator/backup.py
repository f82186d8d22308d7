"""Backup and restore of the central site's state: the store, the CA, the
registries (`wardprobe-aggregator backup --out DIR`, `restore --from DIR`).

A backup is a directory (mode 0700: it holds the CA's key):

- wardprobe.duckdb: the store, a consistent cut taken while ingest goes on.
  DuckDB lets one process hold the file and that is the running aggregator,
  so `backup` asks it over its control socket (<state_dir>/control.sock,
  mode 0600): it copies the store on a second connection (`Store.reader`)
  in one read transaction (`COPY FROM DATABASE`; every result committed
  before the transaction began is in the copy, ingest never waits) into a
  file beside the store (the service may write nowhere else), and the
  command moves that into the backup. When no aggregator runs, the command
  copies the store itself, attached read-only.
- registry.sqlite (the probes, their certificates, the tokens) and
  api_tokens.sqlite when there is one: SQLite's online backup API, a
  consistent copy while the aggregator and the admin commands write.
- ca.key, ca.crt, server.key, server.crt: copied, modes kept.
- manifest.json: each file's SHA-256 and size, the store's rows per table
  and the registry's probes, as the copies hold them.

`restore` checks every checksum, refuses while an aggregator runs on the
state, refuses to replace a CA, registry or store already there unless
`force` (then they are moved aside, not deleted), puts the files in place,
and checks the restored store's rows against the manifest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from aggregator.api.tokens import TOKENS_FILE
from aggregator.config import AggregatorConfig
from aggregator.enrolment.ca import CA_CERT_FILE, CA_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE
from aggregator.enrolment.registry import REGISTRY_FILE
from aggregator.ingest.store import Store, sql_text
from aggregator.ingest.tables import RESULT_TABLES
from wardprobe import __version__

log = logging.getLogger(__name__)

CONTROL_SOCKET = "control.sock"
MANIFEST_FILE = "manifest.json"
STORE_FILE = "wardprobe.duckdb"  # the store's name inside a backup
MANIFEST_FORMAT = 1
# Files of the state directory a backup holds: the CA's are required.
CA_FILES = (CA_KEY_FILE, CA_CERT_FILE)
OTHER_KEY_FILES = (SERVER_KEY_FILE, SERVER_CERT_FILE)
SQLITE_FILES = (REGISTRY_FILE, TOKENS_FILE)
_COPY_ALIAS = "wardprobe_backup_copy"
_MAX_REQUEST_BYTES = 64 * 1024
_SUN_PATH_MAX = 107  # sockaddr_un's sun_path, less its NUL


class BackupError(Exception):
    """Backup or restore refused or failed; `usage` when what was given
    cannot be used (exit 2), else refused (exit 1)."""

    def __init__(self, message: str, hint: str | None = None, *, usage: bool = False) -> None:
        super().__init__(message)
        self.hint = hint
        self.usage = usage


@dataclass(frozen=True)
class Manifest:
    """What a backup holds, as manifest.json says it."""

    created_at: str
    store_taken: str  # "from the running aggregator" or "offline"
    files: dict[str, dict[str, Any]]  # name → sha256, bytes
    store_rows: dict[str, int]  # table → rows
    probes: int  # in the registry

    @property
    def results(self) -> int:
        """Results in the store copy (every result table)."""
        return sum(self.store_rows.get(t, 0) for t in RESULT_TABLES)

    def to_json(self) -> str:
        """manifest.json's text."""
        return json.dumps(
            {
                "format": MANIFEST_FORMAT,
                "wardprobe_version": __version__,
                "created_at": self.created_at,
                "store_taken": self.store_taken,
                "files": self.files,
                "store_rows": self.store_rows,
                "results": self.results,
                "probes": self.probes,
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """manifest.json of a backup; BackupError (usage) when missing or damaged."""
        path = directory / MANIFEST_FILE
        try:
            data = json.loads(path.read_text("utf-8"))
            if data["format"] != MANIFEST_FORMAT:
                raise BackupError(
                    f"{path} is of format {data['format']}; this release reads {MANIFEST_FORMAT}",
                    usage=True,
                )
            return cls(
                created_at=str(data["created_at"]),
                store_taken=str(data["store_taken"]),
                files={str(k): dict(v) for k, v in data["files"].items()},
                store_rows={str(k): int(v) for k, v in data["store_rows"].items()},
                probes=int(data["probes"]),
            )
        except FileNotFoundError:
            raise BackupError(
                f"{directory} is not a backup: no {MANIFEST_FILE}", usage=True
            ) from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise BackupError(f"{path} cannot be read: {err}", usage=True) from None


# --- the store's copy ------------------------------------------------------


def copy_store(con: duckdb.DuckDBPyConnection, catalog: str, dest: Path) -> dict[str, int]:
    """Copy the database `catalog` of `con` into a new DuckDB file `dest`,
    in one read transaction; the rows of each table as the copy holds them."""
    con.execute(f"attach {sql_text(str(dest))} as {_COPY_ALIAS}")
    try:
        con.execute("begin transaction")
        try:
            con.execute(f'copy from database "{catalog}" to {_COPY_ALIAS}')
            tables = con.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where database_name = ? order by all",
                [catalog],
            ).fetchall()
            rows = {}
            for schema, table in tables:
                count = con.execute(f'select count(*) from "{catalog}"."{schema}"."{table}"')
                rows[str(table)] = int(count.fetchone()[0])  # type: ignore[index]
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.execute(f"detach {_COPY_ALIAS}")
    return rows


def take_store_copy(store: Store, dest: Path) -> dict[str, int]:
    """In the running aggregator: copy its store into `dest` without holding
    up ingest (a second connection; DuckDB gives it a consistent view)."""
    reader = store.reader()
    try:
        catalog = str(reader.execute("select current_database()").fetchone()[0])  # type: ignore[index]
        return copy_store(reader, catalog, dest)
    finally:
        reader.close()


def _offline_copy(store_path: Path, dest: Path) -> dict[str, int]:
    """No aggregator runs: attach the store read-only and copy it."""
    with duckdb.connect() as con:
        con.execute(f"attach {sql_text(str(store_path))} as wardprobe_store (read_only)")
        try:
            return copy_store(con, "wardprobe_store", dest)
        finally:
            con.execute("detach wardprobe_store")


class ControlServer:
    """The running aggregator's control socket: `copy-store` asks it for a
    copy of its store, `ping` whether it runs (JSON, one line each way). Only the service's user and
    root can connect (mode 0600 in the state directory)."""

    def __init__(self, store: Store, state_dir: Path) -> None:
        self._store = store
        self.path = state_dir / CONTROL_SOCKET
        self._server: asyncio.AbstractServer | None = None
        self._busy = asyncio.Lock()  # one copy at a time: each is the store's size

    async def start(self) -> None:
        """Listen; a socket left by a process that died is replaced."""
        self.path.unlink(missing_ok=True)
        for stale in self._store.path.parent.glob(self._store.path.name + ".backup-*"):
            stale.unlink(missing_ok=True)  # copies a killed `backup` never moved
        with _addressable(self.path) as address:
            self._server = await asyncio.start_unix_server(
                self._serve, path=address, limit=_MAX_REQUEST_BYTES
            )
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        """Stop listening and remove the socket."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            answer = await self._answer(line)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as err:
            log.warning("control socket: %s", err)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            command = request["command"] if isinstance(request, dict) else None
        except ValueError:
            command = None
        if command == "ping":  # restore asks whether an aggregator runs here
            return {"ok": True}
        if command != "copy-store":
            return {"ok": False, "error": "unknown request (this aggregator knows copy-store)"}
        async with self._busy:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            dest = self._store.path.with_name(f"{self._store.path.name}.backup-{stamp}")
            try:
                rows = await asyncio.to_thread(take_store_copy, self._store, dest)
            except Exception as err:
                log.exception("copying the store for a backup failed")
                dest.unlink(missing_ok=True)
                return {"ok": False, "error": f"the aggregator could not copy its store: {err}"}
            log.info("store copied for a backup to %s (%d results)", dest, _results(rows))
            return {"ok": True, "path": str(dest), "rows": rows}


@contextlib.contextmanager
def _addressable(path: Path) -> Iterator[str]:
    """`path` as bind() and connect() take it. A Unix socket's address holds
    107 bytes; a longer path goes through its directory's descriptor
    (/proc/self/fd/N/name), which Linux resolves like the directory."""
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        yield str(path)
        return
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)


def _results(rows: dict[str, int]) -> int:
    return sum(rows.get(t, 0) for t in RESULT_TABLES)


def ask_running_aggregator(state_dir: Path, request: dict[str, Any]) -> dict[str, Any] | None:
    """The running aggregator's answer on its control socket; None when none listens."""
    path = state_dir / CONTROL_SOCKET
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            with _addressable(path) as address:
                sock.connect(address)
        except (FileNotFoundError, ConnectionRefusedError):
            return None  # no socket, or one left by a process that is gone
        except PermissionError:
            raise BackupError(
                f"cannot connect to {path}: permission denied",
                "run it as root or as the aggregator's user",
            ) from None
        sock.sendall(json.dumps(request).encode() + b"\n")
        with sock.makefile("rb") as answer:
            line = answer.readline()
    if not line:
        raise BackupError(f"the aggregator closed {path} without an answer (see its log)")
    result: dict[str, Any] = json.loads(line)
    return result


# --- backup ----------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _sqlite_copy(source: Path, dest: Path) -> None:
    """SQLite's online backup: consistent while others write."""
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as src,
        contextlib.closing(sqlite3.connect(dest)) as out,
    ):
        src.backup(out)
    dest.chmod(0o600)


def _probe_count(registry: Path) -> int:
    with contextlib.closing(sqlite3.connect(registry)) as con:
        return int(con.execute("select count(*) from probes").fetchone()[0])


def _empty_out(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} exists and is not an empty directory", usage=True)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)  # the CA's private key is in it
    return out


def backup(config: AggregatorConfig, out: Path) -> Manifest:
    """Back up the store, the CA and the registries into `out` (new or empty)."""
    state = config.state_dir
    if config.registry is not None:
        # A backup without the probes' registry could not be restored to a
        # working aggregator: say so rather than leave it out.
        raise BackupError(
            "the probe registry is in PostgreSQL (registry in aggregator.toml), not in "
            f"{state}: this backup would lack it",
            "back up that database with PostgreSQL's pg_dump, beside the lake's catalogue "
            "(docs/scaling.md)",
            usage=True,
        )
    missing = [name for name in CA_FILES if not (state / name).is_file()]
    if missing:
        raise BackupError(
            f"no CA in {state} (missing {', '.join(missing)})",
            "check state_dir in aggregator.toml",
            usage=True,
        )
    out = _empty_out(out)
    store_copy = out / STORE_FILE
    answer = ask_running_aggregator(state, {"command": "copy-store"})
    if answer is not None:
        if not answer.get("ok"):
            raise BackupError(str(answer.get("error", "the aggregator refused")))
        shutil.move(str(answer["path"]), store_copy)
        rows = {str(k): int(v) for k, v in answer["rows"].items()}
        taken = "from the running aggregator"
    else:
        if not config.store_path.is_file():
            raise BackupError(f"no store at {config.store_path}", usage=True)
        try:
            rows = _offline_copy(config.store_path, store_copy)
        except duckdb.Error as err:
            store_copy.unlink(missing_ok=True)
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise BackupError(
                f"cannot copy {config.store_path}: {first}",
                f"if an aggregator runs, it does not answer on {state / CONTROL_SOCKET}: "
                "check that it is this release and uses this state_dir",
            ) from None
        taken = "offline"
    store_copy.chmod(0o600)
    for name in SQLITE_FILES:
        if (state / name).is_file():
            _sqlite_copy(state / name, out / name)
    for name in (*CA_FILES, *OTHER_KEY_FILES):
        if (state / name).is_file():
            shutil.copy2(state / name, out / name)
    files = {
        path.name: {"sha256": _sha256(path), "bytes": path.stat().st_size}
        for path in sorted(out.iterdir())
        if path.name != MANIFEST_FILE
    }
    registry = out / REGISTRY_FILE
    manifest = Manifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        store_taken=taken,
        files=files,
        store_rows=rows,
        probes=_probe_count(registry) if registry.exists() else 0,
    )
    (out / MANIFEST_FILE).write_text(manifest.to_json() + "\n", "utf-8")
    return manifest


# --- restore ---------------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    """What `restore` put in place."""

    manifest: Manifest
    moved_aside: Path | None  # where the replaced files went (force)


def verify(directory: Path) -> Manifest:
    """The backup's manifest, once every file it lists is there with its checksum."""
    manifest = Manifest.read(directory)
    if STORE_FILE not in manifest.files or not set(CA_FILES) <= set(manifest.files):
        raise BackupError(f"{directory}/{MANIFEST_FILE} lists no store or no CA", usage=True)
    for name, entry in manifest.files.items():
        path = directory / name
        if Path(name).name != name or name.startswith("."):
            raise BackupError(
                f"{MANIFEST_FILE} names {name!r}, not a file of the backup", usage=True
            )
        if not path.is_file():
            raise BackupError(f"{path} is missing from the backup", usage=True)
        if _sha256(path) != entry.get("sha256"):
            raise BackupError(
                f"{path} does not match its checksum in {MANIFEST_FILE}: the backup is damaged",
                usage=True,
            )
    return manifest


def _targets(config: AggregatorConfig, manifest: Manifest) -> dict[str, Path]:
    """Where each file of the backup goes."""
    return {
        name: config.store_path if name == STORE_FILE else config.state_dir / name
        for name in manifest.files
    }


def _store_in_use(store_path: Path) -> bool:
    """Whether a process holds the store (DuckDB's lock)."""
    if not store_path.exists():
        return False
    try:
        with duckdb.connect() as con:
            con.execute(f"attach {sql_text(str(store_path))} as probe_lock (read_only)")
    except duckdb.Error as err:
        return "lock" in str(err).lower()
    return False


def restore(config: AggregatorConfig, source: Path, *, force: bool = False) -> Restored:
    """Put a verified backup in place of config's state directory and store."""
    manifest = verify(source)
    state = config.state_dir
    if ask_running_aggregator(state, {"command": "ping"}) is not None or _store_in_use(
        config.store_path
    ):
        raise BackupError(
            f"an aggregator is running on {state}",
            "stop it first (systemctl stop wardprobe-aggregator), then restore",
        )
    targets = _targets(config, manifest)
    live = [path for path in targets.values() if path.exists()]
    wal = config.store_path.with_name(config.store_path.name + ".wal")
    if wal.exists():
        live.append(wal)
    moved_aside = None
    if live:
        if not force:
            raise BackupError(
                f"{state} already holds {', '.join(sorted(p.name for p in live))}",
                "restore --force moves them aside and restores over them",
            )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        moved_aside = state / f"before-restore-{stamp}"
        moved_aside.mkdir(parents=True, mode=0o700)
        for path in live:
            shutil.move(str(path), moved_aside / path.name)
    state.mkdir(parents=True, exist_ok=True)
    config.store_path.parent.mkdir(parents=True, exist_ok=True)
    for name, target in targets.items():
        tmp = target.with_name(target.name + ".restoring")
        shutil.copy2(source / name, tmp)
        os.replace(tmp, target)
    rows = _rows(config.store_path)
    wrong = {t: (n, rows.get(t)) for t, n in manifest.store_rows.items() if rows.get(t) != n}
    if wrong:
        raise BackupError(f"the restored store's rows differ from the manifest: {wrong}")
    _hand_back(state, [*targets.values(), *([moved_aside] if moved_aside else [])])
    return Restored(manifest, moved_aside)


def _rows(store_path: Path) -> dict[str, int]:
    with duckdb.connect() as con:
        con.execute(f"attach {sql_text(str(store_path))} as restored (read_only)")
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'restored'"
        ).fetchall()
        return {
            str(t): int(con.execute(f'select count(*) from restored."{s}"."{t}"').fetchone()[0])  # type: ignore[index]
            for s, t in tables
        }


def _hand_back(state: Path, paths: list[Path]) -> None:
    """Restored as root (sudo): give the files to the state directory's owner
    (the package's service user), which must read the keys and write the store."""
    if os.geteuid() != 0:
        return
    owner = state.stat()
    if owner.st_uid == 0:
        return
    for path in _walk(paths):
        with contextlib.suppress(OSError):
            os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)


def _walk(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        yield path
        if path.is_dir():
            yield from path.rglob("*")
