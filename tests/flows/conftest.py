"""One Prefect test server for every flow test in the session, and one Dask cluster for the
tests of the Dask engine."""

from collections.abc import Iterator

import pytest
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[str]:
    with prefect_test_harness(server_startup_timeout=60):
        url = PREFECT_API_URL.value()
        assert url, "the test harness did not set an API URL"
        yield url


@pytest.fixture(scope="session")
def dask_address() -> Iterator[str]:
    """An in-process LocalCluster; the engine connects to it by compute.dask_address and
    closes only its client."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        yield str(cluster.scheduler_address)


@pytest.fixture(scope="module")
def tcp_dask_address() -> Iterator[str]:
    """A LocalCluster whose workers are threads of this process reached over TCP: every task,
    argument and result is serialised as for a worker on another machine (an in-process
    scheduler's workers run the reductions' steps in the flow instead, tasks/part_map.py).
    Closed after each module that uses it: its threads' traffic would otherwise count in
    later tests' measures of their own allocations (tracemalloc sees every thread)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield str(cluster.scheduler_address)
