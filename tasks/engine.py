"""What the flows need of compute.engine without importing Dask, an optional extra: the
engine_unavailable check of a Dask engine whose extra is not installed, the error of an
unreachable scheduler, whether a table is a Dask DataFrame, and the report's note of what ran
where. The Dask code itself is in dask_engine.py and dask_schema.py, imported only when the
engine is dask."""

from importlib import import_module
from typing import TYPE_CHECKING

from pydantic import JsonValue
from typing_extensions import TypeIs

from retrain_guard.schemas.params import ComputeParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.registry import check
from retrain_guard.tasks.sources import InputError

if TYPE_CHECKING:
    import dask.dataframe as dd

ADDRESS_SETTING = "compute.dask_address"
ENGINE_SETTING = "compute.engine"
SPILL_SETTING = "compute.spill_dir"
ENGINE_UNAVAILABLE = "engine_unavailable"
# What the Dask engine imports (tasks/dask_engine.py): the `dask` extra installs them.
DASK_MODULES = ("dask.dataframe", "distributed")


def engine_problem(compute: ComputeParams, reads: bool = True) -> str | None:
    """Return why the chosen engine cannot run here, or None when it can.

    Only the Dask engine can be missing, and only when it reads the table (`reads`; a table
    given in memory is checked in the flow's process).
    """
    if compute.engine != "dask" or not reads:
        return None
    for module in DASK_MODULES:
        try:
            import_module(module)
        except ImportError as exc:
            return (
                f"{ENGINE_SETTING} 'dask' needs the dask extra, which is not installed "
                f"({module}: {exc}): pip install 'retrain-guard[dask]', or set "
                f"{ENGINE_SETTING} to 'pandas'"
            )
    return None


def check_engine(compute: ComputeParams, reads: bool = True) -> CheckResult | None:
    """Fail engine_unavailable, naming the setting, when the chosen engine cannot run here."""
    problem = engine_problem(compute, reads)
    if problem is None:
        return None
    return check(ENGINE_UNAVAILABLE).result(
        "fail", problem, metrics={"setting": ENGINE_SETTING, "value": compute.engine}
    )


class EngineSettingError(InputError):
    """A compute setting the Dask engine cannot work with; `setting` names it."""

    setting = ENGINE_SETTING


class ClusterUnreachable(EngineSettingError):
    """The scheduler at compute.dask_address cannot be reached; the message names it."""

    setting = ADDRESS_SETTING


class SpillUnwritable(EngineSettingError):
    """The checked table cannot be written to compute.spill_dir; the message says why."""

    setting = SPILL_SETTING


def is_dask_frame(table: object) -> "TypeIs[dd.DataFrame]":
    """Whether the table is a Dask DataFrame (told without importing Dask)."""
    return type(table).__module__.split(".")[0] == "dask"


def engine_metrics(flow: str, table: object, steps: bool = False) -> dict[str, JsonValue]:
    """Return the report's note of what ran on the cluster, what read the table stored on
    the flow's disk a column at a time (tasks/stored_table.py), and what needed the whole
    table collected into the flow's process: `table` as the schema stage got it (a Dask
    DataFrame, or the table collected). `steps`: the per-partition steps of the leakage
    checks, the time split's cut and the holdout's scoring run on the cluster
    (tasks/part_map.py), not in the flow's process."""
    on_cluster = is_dask_frame(table)
    moved = ["load", "schema", "profile"] if on_cluster else ["load"]
    later = ["leakage", *(["split", "train", "evaluate"] if flow == "retrain" else [])]
    if on_cluster and steps:
        moved += [stage for stage in later if stage != "train"]
    return {
        "name": "dask",
        "on_cluster": list[JsonValue](moved),
        "stored_for": list[JsonValue](later if on_cluster else []),
        "collected_for": list[JsonValue]([] if on_cluster else ["schema", "profile", *later]),
    }
