"""Local services for ``kalimera run`` and the tests: Postgres, Redis and Azurite (and, for the
tests, a PgBouncer in front of Postgres).

Postgres and Redis are used where they answer; otherwise private ones are started from the
installed binaries, with their data under ``.local/``. Azurite always runs privately (from
``node_modules``) on free ports, so two stacks side by side never share a container.
Every process started here runs in its own session and is stopped by ``LocalStack.close``.

A stack killed without a chance to close (SIGKILL, the OOM killer) must not leave its services
running on ``.local/``, where the next stack would start a second Azurite on the same folder:
- Azurite and Redis are children that get SIGTERM from the kernel when the stack's process dies
  (Linux ``PR_SET_PDEATHSIG``, set between fork and exec);
- the private Postgres is a daemon (``pg_ctl`` detaches it), so a small watcher child with the
  same parent-death signal runs ``pg_ctl stop`` when it fires;
- and, as the net under both, each stack records its children in ``stack-<pid>.pids`` under its
  folder: a new stack stops the children of a record whose owner is gone before starting its own.

Over 400 lines: four services, each started, waited for and stopped, and the crash net above;
dev-only (never deployed, see .funcignore).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql

logger = logging.getLogger(__name__)

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key: not a secret.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


# Run by the Postgres watcher: wait for SIGTERM (parent death or close()), then stop Postgres.
_STOP_ON_SIGTERM = (
    "import signal, subprocess, sys\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})\n"
    "signal.sigwait({signal.SIGTERM, signal.SIGINT})\n"
    "subprocess.run(sys.argv[1:], capture_output=True, check=False)\n"
)
PR_SET_PDEATHSIG = 1


class LocalStackError(RuntimeError):
    """A local service could not be found or started; the message says what to install."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_answers(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int, *, seconds: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_answers("127.0.0.1", port):
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    msg = f"nothing answered on 127.0.0.1:{port} within {seconds:.0f} s"
    raise LocalStackError(msg)


def start_uvicorn(
    app: str,
    *,
    port: int,
    env: Mapping[str, str],
    extra: Sequence[str] = (),
    log: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """One uvicorn worker serving ``app`` in a process of its own (benchmarks, durability tests),
    returned once its port answers (uvicorn binds after the app's startup)."""
    out = log.open("ab") if log is not None else None
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                *extra,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
        )
    finally:
        if out is not None:
            out.close()
    try:
        wait_for_port(port, seconds=30, proc=proc)
    except LocalStackError:
        proc.kill()
        proc.wait()
        raise
    return proc


def azurite_connection_string(blob_port: int) -> str:
    endpoint = "http://127.0.0.1:{port}/" + AZURITE_ACCOUNT
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={endpoint.format(port=blob_port)};"
        f"QueueEndpoint={endpoint.format(port=blob_port + 1)};"
        f"TableEndpoint={endpoint.format(port=blob_port + 2)};"
    )


def postgres_answers(url: str) -> bool:
    params = pg_conninfo.conninfo_to_dict(url)
    params["dbname"] = "postgres"
    try:
        with psycopg.connect(**params, connect_timeout=2):  # type: ignore[arg-type]
            return True
    except psycopg.OperationalError:
        return False


def ensure_database(url: str, *, template: str | None = None) -> None:
    """Create the database the URL names when the server lacks it (as a copy of ``template``,
    a database on the same server, when given)."""
    params = pg_conninfo.conninfo_to_dict(url)
    name = str(params.get("dbname") or "postgres")
    params["dbname"] = "postgres"
    with psycopg.connect(**params, autocommit=True, connect_timeout=5) as conn:  # type: ignore[arg-type]
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %(n)s", {"n": name}
        ).fetchone()
        if not exists and template:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        elif not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    params = pg_conninfo.conninfo_to_dict(url)
    name = str(params["dbname"])
    params["dbname"] = "postgres"
    with psycopg.connect(**params, autocommit=True, connect_timeout=5) as conn:  # type: ignore[arg-type]
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def redis_answers(url: str) -> bool:
    from redis import Redis

    try:
        return bool(Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies (Linux only).

    The kernel sends it when the *thread* that forked the child exits, so stacks are made from a
    thread that lives as long as they do (the main thread, in ``kalimera run`` and the tests)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def process_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), which
    tells a process from a later one that reuses its pid; None when it is gone, a zombie, or
    this is not Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return None if fields[0] == "Z" else fields[19]


def _stop_pid(pid: int, started: str, sig: int, *, seconds: float = 10) -> None:
    """Send ``sig`` to the process if it is still the one that started at ``started``; SIGKILL
    it when it has not exited within ``seconds``."""
    if process_start_time(pid) != started:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + seconds
    while process_start_time(pid) == started and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_start_time(pid) == started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop_orphans(root: Path) -> list[str]:
    """Stop the children recorded by stacks under ``root`` whose owner is gone (killed without
    closing); returns the names of the processes stopped."""
    stopped = []
    for record in sorted(root.glob("stack-*.pids")):
        try:
            entries = json.loads(record.read_text())
            owner, owner_started = entries["owner"], entries["started"]
        except (OSError, ValueError, KeyError, TypeError):
            record.unlink(missing_ok=True)
            continue
        if process_start_time(owner) == owner_started:
            continue  # a live stack (e.g. a second `kalimera run` beside this one)
        for child in entries["children"]:
            if process_start_time(child["pid"]) == child["started"]:
                _stop_pid(child["pid"], child["started"], child["signal"])
                stopped.append(child["name"])
                logger.warning(
                    "stopped %s (pid %s), left running by a stack that was killed",
                    child["name"],
                    child["pid"],
                )
        for folder in entries.get("remove", []):
            shutil.rmtree(folder, ignore_errors=True)
        record.unlink(missing_ok=True)
    return stopped


class LocalStack:
    """Processes this stack started, and how to stop them."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        stop_orphans(self.root)
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._cleanups: list[tuple[str, list[str]]] = []
        self._remove: list[Path] = []
        self._pg_start: list[str] = []
        self._pg_stop: list[str] = []
        self._pg_data: Path | None = None
        self._record = self.root / f"stack-{os.getpid()}.pids"
        self._children: dict[str, dict[str, object]] = {}

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, name: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        self._procs.append((name, proc))
        self._track(f"{name}:{proc.pid}", proc.pid, signal.SIGTERM)
        return proc

    def _track(self, key: str, pid: int, sig: int) -> None:
        """Record a child in ``stack-<pid>.pids`` so a later stack can stop it if this one is
        killed before ``close``."""
        started = process_start_time(pid)
        if started is None:
            return
        name = key.split(":", 1)[0]
        self._children[key] = {"name": name, "pid": pid, "started": started, "signal": int(sig)}
        self._write_record()

    def _write_record(self) -> None:
        me = {"owner": os.getpid(), "started": process_start_time(os.getpid())}
        tmp = self._record.with_suffix(".tmp")
        # Folders only this stack uses (a throwaway Postgres or Azurite folder), removed with it.
        folders = [str(path) for path in self._remove if path.is_dir()]
        children = list(self._children.values())
        tmp.write_text(json.dumps({**me, "children": children, "remove": folders}))
        tmp.replace(self._record)

    def postgres(self, url: str) -> str:
        """``url`` when its server answers, else the URL of a private server under ``.local``."""
        if postgres_answers(url):
            ensure_database(url)
            return url
        bindir = _postgres_bindir()
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        base = self.root
        if (
            as_postgres
            and subprocess.run([*as_postgres, "test", "-x", str(base)], check=False).returncode
        ):
            # The postgres user cannot reach our folder (e.g. pytest's 0700 temp dirs): use a
            # throwaway folder it can reach, removed on close.
            base = Path(tempfile.mkdtemp(prefix="kalimera-pg-"))
            _chown_postgres(base)
            self._remove.append(base)
        data = base / "postgres"
        sockdir = base / "postgres-sock"
        port = free_port()
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            _chown_postgres(data)
            _run(
                "initialise Postgres",
                [
                    *as_postgres,
                    f"{bindir}/initdb",
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ],
            )
        sockdir.mkdir(exist_ok=True)
        _chown_postgres(sockdir)
        ctl = [*as_postgres, f"{bindir}/pg_ctl", "-D", str(data)]
        self._pg_start = [
            *ctl,
            "-o",
            f"-p {port} -h 127.0.0.1 -k {sockdir}",
            "-l",
            str(data / "server.log"),
            "-w",
            "start",
        ]
        self._pg_stop = [*ctl, "-m", "fast", "-w", "stop"]
        self._pg_data = data
        self.start_postgres()
        self._cleanups.append(("postgres", self._pg_stop))
        # pg_ctl detaches Postgres: this watcher stops it if the stack dies without closing.
        self._spawn(
            "postgres-watcher",
            [sys.executable, "-c", _STOP_ON_SIGTERM, *self._pg_stop],
            self.root / "postgres-watcher.log",
        )
        params = pg_conninfo.conninfo_to_dict(url)
        private = pg_conninfo.make_conninfo(
            host="127.0.0.1",
            port=str(port),
            user="postgres",
            dbname=str(params.get("dbname") or "kalimera"),
        )
        ensure_database(private)
        logger.info("started a private Postgres on port %s", port)
        return private

    def start_postgres(self) -> None:
        """(Re)start the private Postgres this stack made."""
        _run("start Postgres", self._pg_start, start_new_session=True)
        assert self._pg_data is not None
        with contextlib.suppress(OSError, ValueError, IndexError):
            postmaster = int((self._pg_data / "postmaster.pid").read_text().split()[0])
            # SIGINT: Postgres's fast shutdown (SIGTERM would wait for clients to leave).
            self._track("postgres", postmaster, signal.SIGINT)

    def stop_postgres(self) -> None:
        """Stop the private Postgres (an outage, for tests); ``start_postgres`` brings it back."""
        _run("stop Postgres", self._pg_stop)

    def redis(self, url: str) -> str:
        """``url`` when it answers, else the URL of a private redis-server."""
        if redis_answers(url):
            return url
        return self.start_redis()[0]

    def start_redis(self) -> tuple[str, subprocess.Popen[bytes]]:
        """A private redis-server (its URL and process, to kill for an outage), stopped on close."""
        binary = shutil.which("redis-server")
        if binary is None:
            msg = "redis-server is not installed: apt-get install redis-server"
            raise LocalStackError(msg)
        port = free_port()
        proc = self._spawn(
            "redis",
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            self.root / "redis.log",
        )
        wait_for_port(port, seconds=10, proc=proc)
        return f"redis://127.0.0.1:{port}/0", proc

    def pgbouncer(self, url: str, *, pool_size: int = 20) -> str:
        """A private PgBouncer in transaction mode in front of ``url``'s server, as Azure's
        built-in one pools (``pool_mode = transaction``, no prepared statements: 1.18 tracks
        none, like Azure's default ``max_prepared_statements = 0``); returns ``url`` through it.

        At most ``pool_size`` server connections per user and database: transactions beyond
        them wait for one, so a client connection shares its server connection with others and
        any session state it leaves is seen by the next transaction (tests rely on that). Its
        folder (config, user list) is under this stack's root; trust auth for the URL's user."""
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            msg = "pgbouncer is not installed: apt-get install pgbouncer (make pgbouncer)"
            raise LocalStackError(msg)
        params = pg_conninfo.conninfo_to_dict(url)
        user = str(params.get("user") or "postgres")
        # It refuses to run as root: -u drops to postgres once it has read its files.
        as_user = ["-u", "postgres"] if os.geteuid() == 0 else []

        def start() -> tuple[subprocess.Popen[bytes], list[int]]:
            port = free_port()
            folder = self.root / f"pgbouncer-{port}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "users.txt").write_text(f'"{user}" ""\n')
            (folder / "pgbouncer.ini").write_text(
                _pgbouncer_ini(params, port=port, pool_size=pool_size, users=folder / "users.txt")
            )
            argv = [binary, *as_user, str(folder / "pgbouncer.ini")]
            return self._spawn("pgbouncer", argv, folder / "log"), [port]

        port = self._start_on_free_ports("pgbouncer", start)
        return pg_conninfo.make_conninfo(url, host="127.0.0.1", port=str(port))

    def azurite(self, data: Path | None = None) -> str:
        """Start a private Azurite on free ports; returns its connection string."""
        script = _azurite_script()
        if data is None:
            data = self._azurite_folder()
        data.mkdir(parents=True, exist_ok=True)
        folder = data

        def start() -> tuple[subprocess.Popen[bytes], list[int]]:
            blob_port = _three_free_ports()
            return self._spawn_azurite(script, folder, blob_port), [blob_port, blob_port + 2]

        return azurite_connection_string(self._start_on_free_ports("azurite", start))

    def _start_on_free_ports(
        self, name: str, start: Callable[[], tuple[subprocess.Popen[bytes], list[int]]]
    ) -> int:
        """Run ``start`` (pick free ports, spawn ``name`` on them; the process and the ports to
        wait for) until the process answers on them; returns the first port. A free port can be
        taken by another process between our pick and the bind: then the service exits at once
        (EADDRINUSE) and another pick is tried."""
        for attempt in range(5):
            proc, ports = start()
            try:
                for port in ports:
                    wait_for_port(port, seconds=30, proc=proc)
            except LocalStackError:
                proc.kill()
                proc.wait()
                self._procs.remove((name, proc))
                self._children.pop(f"{name}:{proc.pid}", None)
                if attempt == 4:
                    raise
                continue
            return ports[0]
        raise AssertionError  # unreachable: the loop returns or raises

    def _spawn_azurite(self, script: Path, data: Path, blob_port: int) -> subprocess.Popen[bytes]:
        return self._spawn(
            "azurite",
            [
                "node",
                str(script),
                "--location",
                str(data),
                "--blobHost",
                "127.0.0.1",
                "--queueHost",
                "127.0.0.1",
                "--tableHost",
                "127.0.0.1",
                "--blobPort",
                str(blob_port),
                "--queuePort",
                str(blob_port + 1),
                "--tablePort",
                str(blob_port + 2),
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
                "--disableTelemetry",
            ],
            self.root / "azurite.log",
        )

    def _azurite_folder(self) -> Path:
        """``.local/azurite`` for the first stack; a throwaway folder for a second one beside it."""
        shared = self.root / "azurite"
        lock = self.root / "azurite.pid"
        if lock.exists():
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.kill(int(lock.read_text()), 0)
                folder = self.root / f"azurite-{os.getpid()}"
                self._remove.append(folder)
                return folder
        lock.write_text(str(os.getpid()))
        self._remove.append(lock)
        return shared

    def close(self) -> None:
        """Stop everything started here, newest first."""
        for name, proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            logger.info("stopped %s", name)
        self._procs.clear()
        self._record.unlink(missing_ok=True)
        self._children.clear()
        for name, argv in reversed(self._cleanups):
            subprocess.run(argv, capture_output=True, check=False)
            logger.info("stopped %s", name)
        self._cleanups.clear()
        for path in self._remove:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self._remove.clear()


def _run(what: str, argv: list[str], *, start_new_session: bool = False) -> None:
    result = subprocess.run(
        argv, capture_output=True, text=True, check=False, start_new_session=start_new_session
    )
    if result.returncode:
        output = (result.stderr or result.stdout).strip().splitlines()[-3:]
        msg = f"could not {what}: {' '.join(output)} (command: {' '.join(argv)})"
        raise LocalStackError(msg)


def _pgbouncer_ini(server: Mapping[str, object], *, port: int, pool_size: int, users: Path) -> str:
    """PgBouncer's configuration: every database of ``server``, pooled by transaction."""
    return (
        "[databases]\n"
        f"* = host={server.get('host') or '127.0.0.1'} port={server.get('port') or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 1000\n"
    )


def _three_free_ports() -> int:
    """A port P with P, P+1 and P+2 free (Azurite's blob, queue and table)."""
    for _ in range(50):
        port = free_port()
        if port < 65000 and not any(
            port_answers("127.0.0.1", p, 0.05) for p in (port + 1, port + 2)
        ):
            return port
    msg = "could not find three consecutive free ports for Azurite"
    raise LocalStackError(msg)


def _azurite_script() -> Path:
    here = Path(__file__).resolve().parent.parent
    for base in (Path.cwd(), here):
        script = base / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"
        if script.exists():
            return script
    msg = (
        "Azurite is not installed: run `npm install` (or `make run`, which does) in the repository"
    )
    raise LocalStackError(msg)


def _postgres_bindir() -> str:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        msg = "PostgreSQL does not answer and is not installed: apt-get install postgresql"
        raise LocalStackError(msg)
    return str(Path(candidates[-1]).parent)


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
        path.chmod(0o700)
