"""The disk a sweep keeps its state and records on (Tune's experiment folder under `storage`): checked before a
sweep starts, and again when a trial fails, to tell a full or read-only disk (an outage: the sweep stops as on
Ctrl-C and `--resume` runs the rest once the disk is back) from a trial's own error.

A full disk would also cut short the state Tune writes as it stops (it rewrites one JSON file in place), and a
resume needs that state whole. So a sweep keeps a ballast file of BALLAST_BYTES beside it and drops it when it
finds the disk full: Tune's last writes then have room."""

import errno
import os
from pathlib import Path

OUTAGES = {errno.ENOSPC: "the disk is full", errno.EROFS: "the disk is read-only", errno.EDQUOT: "over the quota",
           errno.EIO: "the disk failed (I/O error)"}
PROBE_BYTES = 64 * 1024  # a records file's worth: a nearly full disk fails here too
BALLAST_BYTES = 16 << 20  # far above Tune's state for thousands of trials
BALLAST = ".gprune-ballast"


def storage_problem(folder: Path) -> str | None:
    """Why nothing can be written under `folder` now (full, read-only, over quota), or None."""
    probe = folder / f".gprune-probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as file:
            file.write(b"\0" * PROBE_BYTES)
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        return f"{folder}: {OUTAGES.get(error.errno, error.strerror)} ({error.strerror})"
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    return None


def check_storage(folder: Path) -> None:
    """Tune keeps the sweep's state under `storage`: it must be a folder this process can write."""
    problem = storage_problem(folder)
    if problem:
        raise ValueError(f"storage {problem}: the sweep cannot keep its state there; give a writable folder "
                         "(storage: in the sweep file, or --storage)")


def lay_ballast(folder: Path) -> None:
    """Reserve room for the state a sweep writes as it stops (best effort: a disk too full for it is said when
    a trial cannot write)."""
    try:
        with open(folder / BALLAST, "wb") as file:
            os.posix_fallocate(file.fileno(), 0, BALLAST_BYTES)  # real blocks, not a sparse file
    except OSError:
        (folder / BALLAST).unlink(missing_ok=True)


def drop_ballast(folder: Path) -> None:
    try:
        (folder / BALLAST).unlink(missing_ok=True)
    except OSError:  # a read-only disk: nothing more can be written there anyway
        pass
