"""Are the tracking store and the Ray head there? Checked in seconds, before a sweep creates any run or
starts Ray, so an unreachable store fails with one message naming it instead of retrying for minutes."""

import os
import socket
import urllib.request
from pathlib import Path

import sqlalchemy

TIMEOUT_S = 5


class UnreachableError(ValueError):
    pass


def check_tracking_store(uri: str, timeout: float = TIMEOUT_S) -> None:
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        folder = path.parent
        if not folder.is_dir():
            raise UnreachableError(f"tracking store {uri}: folder {folder} does not exist; create it or pick another")
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise UnreachableError(f"tracking store {uri}: {path} is not writable (SQLite writes the file and a "
                                   f"journal beside it in {folder}); pick a writable folder")
    elif uri.startswith(("postgresql", "mysql")):
        url = sqlalchemy.engine.make_url(uri)
        shown = url.render_as_string(hide_password=True)
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": int(timeout)},
                                          poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect():
                pass
        except Exception as error:
            raise UnreachableError(f"tracking store {shown} is unreachable ({type(error).__name__}: "
                                   f"{str(error).splitlines()[0]}); is the database up and the URI right?") from None
        finally:
            engine.dispose()
    elif uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
        except OSError as error:
            raise UnreachableError(f"tracking server {uri} is unreachable ({error}); is `mlflow server` running "
                                   "there?") from None


def check_ray_address(address: str | None, timeout: float = TIMEOUT_S) -> None:
    """A HOST:PORT Ray address must accept a connection (ray.init would retry it forever)."""
    if address in (None, "auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as error:
        raise UnreachableError(f"Ray address {address} is unreachable ({error}); start the head with "
                               "`ray start --head` there, or leave --address out to start a local cluster") from None
