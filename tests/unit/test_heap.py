"""tasks/heap.py: glibc's heap arenas capped, freed memory handed back."""

import gc
import os
import platform
import subprocess
import sys
import weakref

import pytest

from retrain_guard.schemas.params import RetrainParams
from retrain_guard.tasks.heap import release_freed_memory
from retrain_guard.tasks.reporting import RunRecorder

GLIBC = platform.libc_ver()[0] == "glibc"

# Six threads each allocate from the C heap, then glibc's malloc_info counts the arenas.
_ARENAS = """
import ctypes, sys, tempfile, threading
import numpy as np
from retrain_guard.tasks.heap import limit_heap_arenas
print(limit_heap_arenas() if sys.argv[1] == "limit" else None)
barrier = threading.Barrier(6)
def allocate():
    kept = [np.ones(1000) for _ in range(50)]  # 8 KB each: below the mmap threshold
    barrier.wait()
threads = [threading.Thread(target=allocate) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    handle = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(handle))
    libc.fclose(ctypes.c_void_p(handle))
    print(open(out.name).read().count("<heap nr="))
"""


def _arenas(mode: str, env: dict[str, str]) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _ARENAS, mode], capture_output=True, text=True, env=env, check=True
    )
    said, count = done.stdout.split()
    return said, int(count)


@pytest.mark.skipif(not GLIBC, reason="heap arenas are glibc's; elsewhere nothing is set")
def test_heap_arenas_are_capped_unless_the_environment_chose() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    said, capped = _arenas("limit", env)
    assert said == "True" and capped <= 2
    assert _arenas("leave", env)[1] > 2  # glibc's default: an arena per thread, here
    said, chosen = _arenas("limit", {**env, "MALLOC_ARENA_MAX": "4"})
    assert said == "False" and 2 < chosen <= 4


def test_freed_memory_is_handed_back_where_the_c_library_can() -> None:
    """glibc (these machines, the Docker image) hands freed heap memory back; others say no."""
    assert release_freed_memory() is GLIBC


class _Node:
    def __init__(self) -> None:
        self.itself = self  # a reference cycle: only the cycle collector frees it


def test_what_only_a_reference_cycle_holds_is_freed_first() -> None:
    gc.disable()  # no automatic collection may free it before release_freed_memory does
    try:
        node = _Node()
        alive = weakref.ref(node)
        del node
        assert alive() is not None
        release_freed_memory()
        assert alive() is not None  # a trim alone leaves the collector to its schedule
        release_freed_memory(collect_cycles=True)
        assert alive() is None
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("engine", "owns_process", "freed"),
    [("dask", True, True), ("pandas", True, False), ("dask", False, False)],
)
def test_a_stage_of_the_dask_engine_starts_from_what_the_process_holds(
    engine: str, owns_process: bool, freed: bool
) -> None:
    """On the Dask engine each stage of the project's flows first frees what the stages
    before left to cycles (and trims the heap); the pandas engine's stages, and check_data
    in a team's own process, leave the collector to its own schedule."""
    params = RetrainParams.model_validate(
        {"data": {"path": "x.parquet", "label": "y"}, "compute": {"engine": engine}}
    )
    recorder = RunRecorder(params, (), "validate-data", owns_process=owns_process)
    gc.disable()
    try:
        node = _Node()
        alive = weakref.ref(node)
        del node
        with recorder.stage("leakage"):
            assert (alive() is None) is freed
    finally:
        gc.enable()
    assert "leakage" in recorder.timings
