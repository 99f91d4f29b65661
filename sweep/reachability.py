"""Are the tracking store and the Ray head there? Checked in seconds, before a sweep creates any run or
starts Ray, so an unreachable store fails with one message naming it instead of retrying for minutes."""

import json
import os
import socket
import tempfile
import urllib.request
from pathlib import Path

import sqlalchemy

TIMEOUT_S = 5


class UnreachableError(ValueError):
    pass


SQLITE_HEADER = b"SQLite format 3\x00"


def check_tracking_store(uri: str, timeout: float = TIMEOUT_S) -> None:
    """The store answers and is what its URI says: a SQLite file (or none yet) in a writable folder, a database
    whose driver is installed, an MLflow server (not just any web server)."""
    if uri.startswith("sqlite:///"):
        _check_sqlite(uri, Path(uri.removeprefix("sqlite:///")))
    elif uri.startswith(("postgresql", "mysql")):
        _check_database(uri, timeout)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri, timeout)


def _check_sqlite(uri: str, path: Path) -> None:
    folder = path.parent
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


def _check_database(uri: str, timeout: float) -> None:
    url = sqlalchemy.engine.make_url(uri)
    shown = url.render_as_string(hide_password=True)
    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": int(timeout)},
                                          poolclass=sqlalchemy.pool.NullPool)
    except (ImportError, sqlalchemy.exc.NoSuchModuleError) as error:
        raise UnreachableError(f"tracking store {shown}: its database driver is not installed ({error}); install "
                               "it (e.g. pip install pymysql, then mysql+pymysql://...) or use PostgreSQL "
                               "(postgresql+psycopg://..., installed)") from None
    try:
        with engine.connect():
            pass
    except Exception as error:
        raise UnreachableError(f"tracking store {shown} is unreachable ({type(error).__name__}: "
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


RAY_TEMP = Path(tempfile.gettempdir()) / "ray"  # where Ray keeps a host's sessions and its bootstrap file


def current_cluster() -> str | None:
    """The address `ray start` left for `auto` on this machine (Ray's own bootstrap file), if any."""
    path = RAY_TEMP / "ray_current_cluster"
    return path.read_text().strip() or None if path.is_file() else None
