"""A worker's host memory over hours of slices: freed buffers go back to the system.

glibc serves an allocation above its mmap threshold (128 KiB) with mmap and unmaps it when freed, but it raises
that threshold each time such a block is freed, so after the first frees the large host buffers of each batch
(decoded images, pixel values, cached vision features evicted from the cache) come from the heap, which does not
shrink. Over a full-size trial (bench/full_size.py: 214,354 VQAv2 samples, the feature cache full after 3,000
images) a worker grew from 1.7 GB to 3.4 GB that way; with the threshold fixed it stays at 1.7 GB.
"""

import ctypes

M_MMAP_THRESHOLD = -3  # mallopt's parameter (glibc's malloc.h); setting it also stops the threshold moving
THRESHOLD = 128 * 1024  # glibc's own starting value


def keep_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold for this process; False where the C library is not glibc (nothing changes)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD))
