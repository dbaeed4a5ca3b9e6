"""A throwaway PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temp dir.

The server listens on 127.0.0.1 only, on a free port, with password authentication over
TCP; it is stopped and its directory removed afterwards. PostgreSQL refuses to run as root,
so as root the server runs as the ``postgres`` user (Debian's ``postgresql`` package creates
it) or, failing that, ``nobody``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PgServer", "find_bindir", "pg_user", "running_server"]

SUPERUSER = "postgres"


def find_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates = []
    if found := shutil.which("initdb"):
        candidates.append(Path(os.path.realpath(found)).parent)
    candidates += [Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                                                  reverse=True)]
    for d in candidates:
        if all((d / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def pg_user() -> pwd.struct_passwd | None:
    """Who runs the server: this user unless root, else ``postgres`` or ``nobody``."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    """A running server: ``url(db, user, password)`` gives a SQLAlchemy URL for it."""

    bindir: Path
    root: Path
    port: int
    password: str
    user: pwd.struct_passwd

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, db: str = "postgres", user: str = SUPERUSER, password: str | None = None,
            driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{user}:{password or self.password}@127.0.0.1:{self.port}/{db}"

    def run(self, *argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        """Run a PostgreSQL program as the server's user."""
        as_user = {}
        if os.geteuid() == 0:
            as_user = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        env = {"PATH": f"{self.bindir}:{os.environ.get('PATH', '')}", "LC_ALL": "C",
               "HOME": str(self.root), "PGPASSWORD": self.password}
        return subprocess.run([str(a) for a in argv], cwd=self.root, env=env, check=check,
                              capture_output=True, text=True, **as_user, **kw)

    def sql(self, statement: str, db: str = "postgres") -> None:
        """Execute one statement as the superuser (autocommit: CREATE DATABASE needs it)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                             password=self.password, dbname=db, autocommit=True) as con:
            con.execute(statement)


@contextlib.contextmanager
def running_server(bindir: Path, user: pwd.struct_passwd) -> Iterator[PgServer]:
    """initdb, start, yield, stop (fast, then immediate) and remove everything."""
    root = Path(tempfile.mkdtemp(prefix="distill-study-pg-"))
    server = PgServer(bindir, root, free_port(), os.urandom(12).hex(), user)
    try:
        os.chown(root, user.pw_uid, user.pw_gid)
        pwfile = root / "pw"
        pwfile.write_text(server.password + "\n")
        os.chown(pwfile, user.pw_uid, user.pw_gid)
        server.run(bindir / "initdb", "-D", server.data, "-U", SUPERUSER, "--pwfile", pwfile,
                   "--auth-local=trust", "--auth-host=scram-sha-256", "--no-locale",
                   "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        # Loopback only; fsync off because the server is thrown away (durability is not what
        # the tests check: concurrency is).
        options = (f"-c listen_addresses=127.0.0.1 -p {server.port} "
                   f"-c unix_socket_directories={root} -c fsync=off -c max_connections=60")
        proc = server.run(bindir / "pg_ctl", "-D", server.data, "-l", root / "server.log",
                          "-o", options, "-w", "-t", "60", "start", check=False)
        if proc.returncode != 0:
            log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {proc.stderr.strip()} {log[-2000:]}")
        _wait_ready(server)
        yield server
    finally:
        if (server.data / "postmaster.pid").exists():
            stop = server.run(bindir / "pg_ctl", "-D", server.data, "-m", "fast", "-w", "-t",
                              "20", "stop", check=False)
            if stop.returncode != 0:
                server.run(bindir / "pg_ctl", "-D", server.data, "-m", "immediate", "stop",
                           check=False)
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: PgServer, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)
