"""The pip-installed PostgreSQL (pgserver) in ``DATA_DIR/pg``: every command stops what it started.

A command that finds no server running starts one and owns it; one that finds a server owned by a live command
joins it and leaves it running. Who owns and who uses the server is kept in ``DATA_DIR/pg.users`` (under a file
lock). At exit a command drops itself from the list; the owner stops the server when no other live command uses
it, or hands it on to one that does, which stops it in turn. A server whose owner died without stopping it (a
SIGKILL, a power cut, or an older version that never stopped it) is adopted by the next command, which stops it
at its exit; a server that a live program outside this service holds through pgserver is joined and never
stopped.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import fasteners
    import pgserver
    from pgserver.utils import PostmasterInfo


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be started or reached; the message says what to do."""


@dataclass(frozen=True)
class _Proc:
    pid: int
    started: float

    @classmethod
    def me(cls) -> "_Proc":
        return cls(os.getpid(), psutil.Process().create_time())

    def alive(self) -> bool:
        try:
            return psutil.Process(self.pid).create_time() == self.started
        except psutil.Error:
            return False

    def as_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "started": self.started}


class EmbeddedServer:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pg").resolve()
        self._users_file = self.pgdata.parent / "pg.users"
        self._lock = fasteners.InterProcessLock(str(self.pgdata.parent / "pg.lock"))
        self.url: str | None = None
        self.started_here = False

    # ------------------------------------------------------------------ the users list
    def _read(self) -> tuple[_Proc | None, list[_Proc]]:
        try:
            data = json.loads(self._users_file.read_text())
            owner = _Proc(**data["owner"]) if data.get("owner") else None
            return owner, [_Proc(**u) for u in data.get("users", [])]
        except (OSError, ValueError, KeyError, TypeError):
            return None, []

    def _write(self, owner: _Proc | None, users: list[_Proc]) -> None:
        if owner is None and not users:
            self._users_file.unlink(missing_ok=True)
            return
        tmp = self._users_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"owner": owner.as_json() if owner else None, "users": [u.as_json() for u in users]}))
        tmp.replace(self._users_file)

    # ------------------------------------------------------------------ open / close
    def open(self) -> str:
        """Start or join the server; returns its URL. Registers the stop at exit."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        me = _Proc.me()
        with self._lock:
            owner, users = self._read()
            users = [u for u in users if u.alive() and u != me]
            if _running(self.pgdata) is None:
                self._start()
                self.started_here = True
                owner = me
            elif owner is not None and owner.alive():
                pass  # joined: the owner stops it
            elif users:
                owner, users = users[0], users[1:]  # its owner died while others used it: the first of them owns it
            elif self._other_pgserver_handles():
                log.info("joining a PostgreSQL another program started in the data dir; it is left running",
                         extra={"pgdata": str(self.pgdata)})
            else:
                log.warning("adopting an embedded PostgreSQL left running by a command that ended; it is stopped at"
                            " this command's exit", extra={"pgdata": str(self.pgdata)})
                owner = me
            self._write(owner, users + [me] if owner != me else users)
            info = _running(self.pgdata)
        if info is None:
            raise EmbeddedDatabaseError(f"the embedded PostgreSQL in {self.pgdata} stopped while starting;"
                                        f" see {self.pgdata / 'log'}")
        self.url = info.get_uri()
        atexit.register(self.close)
        return self.url

    def close(self) -> None:
        """Leave the server: stop it when this command owns it and no other live command uses it."""
        atexit.unregister(self.close)
        me = _Proc.me()
        with self._lock:
            owner, users = self._read()
            users = [u for u in users if u.alive() and u != me]
            if owner == me:
                if users:
                    owner, users = users[0], users[1:]  # the next user stops it when it is done
                else:
                    owner = None
                    self.stop()
            self._write(owner, users)

    def _other_pgserver_handles(self) -> bool:
        """Whether a live process other than this one holds a pgserver handle on the server (pgserver lists them
        in ``.handle_pids.json``): a program outside this service, or an older version of it, that uses it."""
        try:
            pids = json.loads((self.pgdata / ".handle_pids.json").read_text())
        except (OSError, ValueError):
            return False
        return any(isinstance(pid, int) and pid != os.getpid() and psutil.pid_exists(pid) for pid in pids)

    def _start(self) -> None:
        try:
            pgserver.get_server(self.pgdata, cleanup_mode=None).psql(QUIET_SERVER_LOG)
        except (subprocess.SubprocessError, OSError, AssertionError) as e:
            raise EmbeddedDatabaseError(
                f"the embedded PostgreSQL in {self.pgdata} did not start ({type(e).__name__}); its log is"
                f" {self.pgdata / 'log'}. If another program uses that directory, stop it or choose another"
                " --data-dir") from e

    def stop(self) -> None:
        """Fast shutdown (sessions are ended, nothing committed is lost), waiting until it is down."""
        info = _running(self.pgdata)
        if info is None:
            return
        try:
            pgserver.pg_ctl(["-w", "-t", "30", "-m", "fast", "stop"], pgdata=self.pgdata, user=_system_user())
        except subprocess.CalledProcessError:
            if info.process is not None and info.process.is_running():
                info.process.terminate()
                try:
                    info.process.wait(10)
                except psutil.TimeoutExpired:
                    info.process.kill()
        log.info("embedded postgresql stopped", extra={"pgdata": str(self.pgdata)})

    def restart(self) -> None:
        """Start the stopped server again with the same socket directory, so its URL stays valid."""
        with self._lock:
            if _running(self.pgdata) is None:
                pgserver.get_server(self.pgdata, cleanup_mode=None).ensure_postgres_running()


def _running(pgdata: Path) -> PostmasterInfo | None:
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):
        return None  # a half-written or stale postmaster.pid: pg_ctl start copes with it
    return info if info is not None and info.is_running() and info.status == "ready" else None


def _system_user() -> str | None:
    # pgserver runs the server as the user "pgserver" when started by root (PostgreSQL refuses to run as root).
    return "pgserver" if os.name != "nt" and os.geteuid() == 0 else None


# The server's own log (pgdata/log) must never hold coordinates: no statement texts (a zone's geometry, a fix's
# literals), no bind parameters, and no DETAIL lines (a constraint violation's DETAIL repeats the failing row).
# Errors are still logged, by their message. psql runs each line in its own transaction, as ALTER SYSTEM needs;
# SECURITY.md gives the same settings for an external server.
QUIET_SERVER_LOG = """
ALTER SYSTEM SET log_statement = 'none';
ALTER SYSTEM SET log_min_error_statement = 'panic';
ALTER SYSTEM SET log_min_duration_statement = -1;
ALTER SYSTEM SET log_duration = off;
ALTER SYSTEM SET log_error_verbosity = 'terse';
ALTER SYSTEM SET log_parameter_max_length = 0;
ALTER SYSTEM SET log_parameter_max_length_on_error = 0;
SELECT pg_reload_conf();
"""


_servers: dict[Path, EmbeddedServer] = {}


def embedded_server(data_dir: Path) -> EmbeddedServer:
    """The one handle of this process on the server in ``data_dir`` (opened on first use)."""
    key = (data_dir / "pg").resolve()
    server = _servers.get(key)
    if server is None:
        server = _servers[key] = EmbeddedServer(data_dir)
        server.open()
    return server
