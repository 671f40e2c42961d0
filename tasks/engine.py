"""What the flows need of compute.engine without importing Dask, an optional extra: the error
of an unreachable scheduler, whether a table is a Dask DataFrame, and the report's note of what
ran where. The Dask code itself is in dask_engine.py
and dask_schema.py, imported only when the engine is dask."""

from typing import TYPE_CHECKING

from pydantic import JsonValue
from typing_extensions import TypeIs

from retrain_guard.tasks.sources import InputError

if TYPE_CHECKING:
    import dask.dataframe as dd

ADDRESS_SETTING = "compute.dask_address"


class ClusterUnreachable(InputError):
    """The scheduler at compute.dask_address cannot be reached; the message names it."""


def is_dask_frame(table: object) -> "TypeIs[dd.DataFrame]":
    """Whether the table is a Dask DataFrame (told without importing Dask)."""
    return type(table).__module__.split(".")[0] == "dask"


def engine_metrics(flow: str, on_cluster: bool) -> dict[str, JsonValue]:
    """Return the report's note of what ran on the cluster and what was collected for."""
    moved = ["load", "schema", "profile"] if on_cluster else ["load"]
    later = ["leakage", *(["split", "train", "evaluate"] if flow == "retrain" else [])]
    collected = later if on_cluster else ["schema", "profile", *later]
    return {
        "name": "dask",
        "on_cluster": list[JsonValue](moved),
        "collected_for": list[JsonValue](collected),
    }
