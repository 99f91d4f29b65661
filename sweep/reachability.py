"""Are the tracking store and the Ray head there? Checked in seconds, before a sweep creates any run or
starts Ray, so an unreachable store fails with one message naming it instead of retrying for minutes."""

import contextlib
import json
import os
import socket
import sqlite3
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import sqlalchemy

TIMEOUT_S = 5


class UnreachableError(ValueError):
    pass


SQLITE_HEADER = b"SQLite format 3\x00"
# the stores a sweep, a suite and the report can use (MLflow's SQL stores, its server, a file store folder)
TRACKING_SCHEMES = ("sqlite:///", "postgresql", "mysql", "http://", "https://", "file:")
SCHEMES_HINT = "use sqlite:///FILE, postgresql+psycopg://..., http(s)://HOST:PORT or file:///FOLDER"


def shown(uri: str) -> str:
    """A tracking URI as it may be printed or logged (consoles, CI logs, Slurm output, reports): its password
    masked, for a database (postgresql://user:***@host/db) and for a server (https://user:***@host)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def check_tracking_store(uri: str, timeout: float = TIMEOUT_S, must_exist: bool = False) -> None:
    """The store answers and is what its URI says: a SQLite file (or none yet, unless `must_exist`: a reader
    would create an empty one) in a writable folder, a database whose driver is installed, an MLflow server
    (not just any web server), a file store's folder. Any other URI is refused with the schemes that work."""
    if not uri.startswith(TRACKING_SCHEMES):
        raise UnreachableError(f"tracking store {uri!r}: not a store MLflow can log to; {SCHEMES_HINT}")
    if uri.startswith("sqlite:///"):
        _check_sqlite(uri, Path(uri.removeprefix("sqlite:///")), must_exist)
    elif uri.startswith(("postgresql", "mysql")):
        _check_database(uri, timeout)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri, timeout)
    else:
        _check_file_store(uri, must_exist)


def _check_sqlite(uri: str, path: Path, must_exist: bool) -> None:
    folder = path.parent
    if must_exist and not path.is_file():
        raise UnreachableError(f"no MLflow store at {path} ({uri}); give the --tracking-uri a sweep logged to "
                               "(default sqlite:///mlflow.db in the folder it ran in)")
    if not folder.is_dir():
        raise UnreachableError(f"tracking store {uri}: folder {folder} does not exist; create it or pick another")
    if path.is_dir():
        raise UnreachableError(f"tracking store {uri}: {path} is a folder; give the SQLite file's path in it, "
                               f"e.g. sqlite:///{path / 'mlflow.db'}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UnreachableError(f"tracking store {uri}: {path} is not writable (SQLite writes the file and a "
                               f"journal beside it in {folder}); pick a writable folder")
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as file:
            if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise UnreachableError(f"tracking store {uri}: {path} is not a SQLite database; give another file "
                                       "name (a new one is created) or the MLflow store's own file")
        try:  # opened for real: a damaged file has the header and fails here
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as database:
                database.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as error:
            raise UnreachableError(f"tracking store {uri}: {path} cannot be read as SQLite ({error}); restore it "
                                   "from a copy, or give another file name") from None


def _check_file_store(uri: str, must_exist: bool) -> None:
    """MLflow's file store is a folder (mlruns/) it creates on first use."""
    path = Path(urllib.parse.urlparse(uri).path)
    if path.exists() and not path.is_dir():
        raise UnreachableError(f"tracking store {uri}: {path} is a file, not a store's folder; give a folder "
                               f"(file:///path/mlruns) or {SCHEMES_HINT}")
    if must_exist and not path.is_dir():
        raise UnreachableError(f"no MLflow file store at {path} ({uri}); give the --tracking-uri a sweep logged to")
    nearest = next(p for p in (path, *path.parents) if p.exists())
    if not os.access(nearest, os.W_OK):
        raise UnreachableError(f"tracking store {uri}: {nearest} is not writable; pick a writable folder")


def _check_database(uri: str, timeout: float) -> None:
    url = sqlalchemy.engine.make_url(uri)
    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": int(timeout)},
                                          poolclass=sqlalchemy.pool.NullPool)
    except (ImportError, sqlalchemy.exc.NoSuchModuleError) as error:
        raise UnreachableError(f"tracking store {shown(uri)}: its database driver is not installed ({error}); install "
                               "it (e.g. pip install pymysql, then mysql+pymysql://...) or use PostgreSQL "
                               "(postgresql+psycopg://..., installed)") from None
    try:
        with engine.connect():
            pass
    except Exception as error:
        raise UnreachableError(f"tracking store {shown(uri)} is unreachable ({type(error).__name__}: "
                               f"{str(error).splitlines()[0]}); is the database up and the URI right?") from None
    finally:
        engine.dispose()


def _check_server(uri: str, timeout: float) -> None:
    base = uri.rstrip("/")
    try:
        urllib.request.urlopen(base + "/health", timeout=timeout).close()
    except OSError as error:
        raise UnreachableError(f"tracking server {uri} is unreachable ({error}); is `mlflow server` running "
                               "there?") from None
    try:  # any web server answers /health; only MLflow's REST API answers this
        with urllib.request.urlopen(base + "/api/2.0/mlflow/experiments/search?max_results=1",
                                    timeout=timeout) as answer:
            if not isinstance(json.loads(answer.read()), dict):
                raise ValueError("its answer is not a JSON object")
    except (OSError, ValueError) as error:
        raise UnreachableError(f"tracking server {uri} answers, but not as an MLflow server ({error}); give the "
                               "address of `mlflow server`") from None


def check_ray_address(address: str | None, timeout: float = TIMEOUT_S) -> None:
    """A HOST:PORT Ray address must accept a connection (ray.init would retry it for 30 s and more); `auto`
    must find a running cluster on this machine."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS") or current_cluster()
        if address is None:
            raise UnreachableError("--address auto: no Ray cluster is running on this machine; start one with "
                                   "`ray start --head`, give its HEAD_IP:6379, or leave --address out")
    if address in (None, "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as error:
        raise UnreachableError(f"Ray address {address} is unreachable ({error}); start the head with "
                               "`ray start --head` there, or leave --address out to start a local cluster") from None


# where Ray keeps a host's sessions and its bootstrap file (Ray reads RAY_TMPDIR, then TMPDIR)
RAY_TEMP = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "ray"


def current_cluster() -> str | None:
    """The address `ray start` left for `auto` on this machine (Ray's own bootstrap file), if any."""
    path = RAY_TEMP / "ray_current_cluster"
    return path.read_text().strip() or None if path.is_file() else None
