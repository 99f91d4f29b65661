"""A worker's host memory over hours of slices: free heap pages go back to the system after each slice.

The large host buffers of each batch (decoded images, pixel values, vision features the cache evicts) come from
glibc's heap, which does not shrink by itself: freed pages between live blocks stay with the process. Over a
full-size trial (bench/full_size.py: 214,354 VQAv2 samples, the feature cache full after 3,000 images) a worker
grew from 1.7 GB to 3.4 GB that way. `malloc_trim` after each slice hands those pages back (about 0.1 s per
1,000-sample slice; the worker then stays at 1.7 GB). Fixing glibc's mmap threshold instead bounds memory too,
but mmaps every large tensor: the tiny model ran 1.75x slower.
"""

import ctypes
import functools


@functools.cache
def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to trim
        return None


def release_free_memory() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
