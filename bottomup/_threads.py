"""Threads of gPb (private): a pool for its per-channel OpenCV loops, and one-thread BLAS.

OpenCV releases the GIL, but ``cv2.filter2D`` runs its DFT path (kernels of 11 x 11 and more)
on one core; the filter banks of gPb are dozens of independent 2-D filterings, so running them
on threads about halves their time on two cores (docs/results.md#segmentation). The
pool is as wide as numba's thread count (``NUMBA_NUM_THREADS`` / ``numba.set_num_threads``),
so one setting bounds the parallelism of the whole pipeline. Results do not depend on the
number of threads: every task writes its own slice.

BLAS (numpy's and scipy's OpenBLAS) is held to one thread while gPb runs
(:func:`blas_single_thread`): its only BLAS work is small (texton distances, ARPACK's
orthogonalisation), and OpenBLAS workers spin after each call, taking a core from numba's
kernels. Results are byte-identical either way.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor, wait

__all__ = ["blas_single_thread", "thread_map"]


@functools.lru_cache(maxsize=4)
def _pool(n_threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="bottomup")


def thread_map(fn, n: int) -> None:
    """Call ``fn(i)`` for ``i in range(n)``, on threads when numba may use more than one.

    Parameters
    ----------
    fn : callable
        Takes an index; its return value is ignored (write results into preallocated arrays).
    n : int
        Number of calls.

    Raises
    ------
    Exception
        The first exception raised by ``fn``, after every call has finished.
    """
    import numba

    n_threads = min(int(numba.get_num_threads()), int(n))
    if n_threads <= 1:
        for i in range(n):
            fn(i)
        return
    futures = [_pool(n_threads).submit(fn, i) for i in range(n)]
    wait(futures)
    for f in futures:
        f.result()


def blas_single_thread():
    """Context manager limiting every loaded BLAS library to one thread (threadpoolctl).

    Examples
    --------
    >>> with blas_single_thread():
    ...     pass
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
