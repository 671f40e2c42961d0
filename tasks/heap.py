"""The flow process's heap: how glibc's allocator gives memory back.

A stage that reads a stored table a column or a partition at a time (tasks/stored_table.py)
frees thousands of arrays. glibc keeps freed heap memory for reuse, in one arena per thread
that allocated it: Prefect's and Dask's threads each kept their own, so the flow's process
stayed far above what it held. `limit_heap_arenas` caps the arenas once, when the CLI or one
of the project's flows (`retrain`, `validate-data`) starts; `check_data` and `check_model`
(flows/api.py), run in a team's own process, leave that process's allocator alone.
`release_freed_memory` hands the freed memory back: at the start of each stage of those
flows on the Dask engine (tasks/reporting.py; before the leakage checks it first collects
reference cycles, once a run, as a full collection walks every object), after each leakage
check of a stored table and after the stages that pull partitions. The heap is trimmed only
with glibc, and arenas are capped only there. In a team's own process the stages are not
tidied; only a table the Dask engine stored is, after its checks and pulls. A
MALLOC_ARENA_MAX set in the environment is glibc's own way to choose, and is left alone.
"""

import ctypes
import gc
import os
from functools import cache
from typing import Any

# Arenas the flow's process may use: one per core of the 2-core machines the benchmarks ran
# on. At 20M rows the Dask engine's `validate` peaked 0.55 GiB lower with MALLOC_ARENA_MAX=1
# than with glibc's default (8 per core), in the same time (benchmarks/RESULTS.md, issue 13).
HEAP_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


@cache
def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return None


def release_freed_memory(collect_cycles: bool = False) -> bool:
    """Hand the memory freed by a stage back to the system (with `collect_cycles`, after
    freeing what only reference cycles still hold); False where the heap cannot be trimmed.

    Without this the process stays at the stage's peak, and the next stage's peak comes on
    top (benchmarks/RESULTS.md, issue 13). The cycles matter: at 20M rows on the Dask engine,
    objects of the stages before the leakage checks that only cycles kept held 0.25 GiB, and
    trimming the heap after collecting them gave back 0.26 GiB more.
    """
    if collect_cycles:  # a full collection walks every object: once a run, not per stage
        gc.collect()
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


@cache
def limit_heap_arenas(arenas: int = HEAP_ARENAS) -> bool:
    """Cap glibc's heap arenas for the threads that allocate from now on; whether it was set.

    Once per process: a thread keeps the arena it first allocated from, and glibc settles
    its limit once a process has used more arenas than its cores allow (mallopt then
    accepts the value without effect), so it is called first thing.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
