"""A person's approval of a borderline run: the pause, its evidence, and what follows.

With `gate.approval: ask`, a run whose only failures are checks a person may override (the
registry entries marked `approvable`: worse_than_last_good, row_count_drop, label_shift,
near_single_class_prediction) pauses with Prefect's `pause_flow_run`. The Prefect UI's Resume
dialog shows the evidence (the report so far, as markdown, also kept as the artifact
`retrain-guard-approval`) above the form `Approval` (approve, reason, by). An approval turns
those failures into warnings that name it, and the run goes on; a rejection, or no answer
within `gate.approval_timeout` seconds, halts the run as usual, its code first in the state
message. Every decision is kept in the report's `run.approvals` and in the metrics of the
checks it settled. Leakage, schema and one-class halts are never approvable: a run with such
a failure halts without asking.

A run asks only where a person can answer: a command-line run without a Prefect server
(no PREFECT_API_URL, an ephemeral local API nobody else sees) treats `ask` as `never`.
"""

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment, flow_run
from prefect.settings import get_current_settings
from pydantic import Field, JsonValue

from retrain_guard.schemas.params import GateParams, RetrainParams
from retrain_guard.schemas.report import CheckResult, JsonDict, Report
from retrain_guard.tasks.artifacts import render_markdown
from retrain_guard.tasks.registry import APPROVABLE, name_of
from retrain_guard.tasks.reporting import RunRecorder

# The evidence is also an artifact of the run, kept after the pause's form is gone.
APPROVAL_KEY = "retrain-guard-approval"
# Seconds Prefect's own pause expiry waits beyond gate.approval_timeout (see _Timeout).
EXPIRY_GRACE = 60
NO_PERSON = (
    "gate.approval 'ask' needs a Prefect server a person can reach (PREFECT_API_URL); "
    "this run has none, so it halts instead of pausing (as with 'never')"
)


class Approval(RunInput):
    """The form of a paused run: approve or reject, and why."""

    approve: bool = Field(
        default=False,
        description="Publish despite the failed checks above (they become warnings naming "
        "this approval). Leave off to reject: the run halts as it would without asking.",
    )
    reason: str = Field(
        min_length=1,
        max_length=2000,
        description="Why: kept in the report (and the published model's report).",
    )
    by: str = Field(default="", max_length=200, description="Who decides (kept in the report).")


@dataclass(frozen=True)
class Decision:
    """A person's answer to a paused run, or the timeout's."""

    approved: bool
    reason: str
    by: str
    codes: tuple[str, ...]
    decided_at: str
    timed_out: bool = False

    def in_words(self) -> str:
        if self.timed_out:
            return f"not approved: {self.reason}"
        who = f" by {self.by}" if self.by else ""
        verdict = "approved" if self.approved else "rejected"
        return f"{verdict}{who} at {self.decided_at} (gate.approval): {self.reason}"

    def to_json(self) -> JsonDict:
        return {
            "approved": self.approved,
            "codes": list[JsonValue](self.codes),
            "reason": self.reason,
            "by": self.by or None,
            "decided_at": self.decided_at,
            "timed_out": self.timed_out,
            "flow_run_id": str(flow_run.id) if flow_run.id else None,
            "deployment": deployment.name,
        }


def approvable_failures(checks: list[CheckResult]) -> list[CheckResult]:
    """Return the failing checks when every one may be approved; [] otherwise."""
    failing = [c for c in checks if c.status == "fail"]
    if not failing or any(c.code not in APPROVABLE for c in failing):
        return []
    return failing


def evidence(report: Report, failing: list[CheckResult], timeout: int) -> str:
    """Return the markdown shown above the approval form: what failed, then the report."""
    lines = [
        "# Approval needed: " + ", ".join(f"`{c.code}`" for c in failing),
        "",
        "The run would halt only on checks a person may override. Approve to publish anyway "
        "(the checks become warnings naming your approval and reason); reject, or give no "
        f"answer within {timeout} s (gate.approval_timeout), and the run halts.",
        "",
        *(f"- **{name_of(c.code)}** (`{c.code}`): {c.summary}" for c in failing),
        "",
        "---",
        "",
    ]
    return "\n".join(lines) + render_markdown(report, images=False)


def ask(report: Report, failing: list[CheckResult], gate: GateParams, key: str) -> Decision:
    """Pause the flow run for a person's answer; a timeout is a decision not to approve."""
    codes = tuple(c.code for c in failing)
    shown = evidence(report, failing, gate.approval_timeout)
    create_markdown_artifact(
        key=APPROVAL_KEY, markdown=shown, description="The evidence a person was asked to judge"
    )
    form = Approval.with_initial_data(description=shown, approve=False)
    get_run_logger().warning(
        "Waiting up to %s s for a person to approve or reject: %s",
        gate.approval_timeout,
        ", ".join(codes),
    )
    reason = f"no answer within gate.approval_timeout {gate.approval_timeout} s"
    timeout = _Timeout(gate.approval_timeout, reason)
    timeout.timer.start()
    try:
        answer = pause_flow_run(
            wait_for_input=form, timeout=gate.approval_timeout + EXPIRY_GRACE, key=key
        )
    except FlowPauseTimeout:  # the backstop: Prefect's own expiry came first
        answer = None
    finally:
        timeout.timer.cancel()
    if answer is None or timeout.fired.is_set():
        return Decision(False, reason, "", codes, _now(), timed_out=True)
    return Decision(answer.approve, answer.reason.strip(), answer.by.strip(), codes, _now())


class _Timeout:
    """Answers the pause for nobody when gate.approval_timeout passes: a rejection, sent
    through Prefect's resume API. Prefect's own expiry (given EXPIRY_GRACE more seconds,
    a backstop) would end the run Failed with its message instead of the halt's code."""

    def __init__(self, seconds: int, reason: str) -> None:
        self.fired = threading.Event()
        self.reason = reason
        context = FlowRunContext.get()
        self.run_id = context.flow_run.id if context and context.flow_run else None
        self.timer = threading.Timer(seconds, self._answer)
        self.timer.daemon = True

    def _answer(self) -> None:
        if self.run_id is None:
            return
        answer = {"approve": False, "reason": self.reason, "by": ""}
        with get_client(sync_client=True) as client:
            result = client.resume_flow_run(self.run_id, run_input=answer)
        # Refused when a person answered first: then theirs is the answer.
        if result.status == SetStateStatus.ACCEPT:
            self.fired.set()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def decided(result: CheckResult, decision: Decision) -> CheckResult:
    """Return a failing approvable check after the decision: a warning when approved."""
    return result.model_copy(
        update={
            "status": "warn" if decision.approved else "fail",
            "summary": f"{result.summary}; {decision.in_words()}",
            "metrics": {**result.metrics, "approval": decision.to_json()},
        }
    )


def settle(recorder: RunRecorder, gate: GateParams, key: str) -> CheckResult | None:
    """Return the run's first failure, after asking a person when every failure may be
    approved and gate.approval is ask; None when there is none (or it was approved)."""
    failed = recorder.first_failure()
    failing = approvable_failures(recorder.checks)
    if failed is None or gate.approval != "ask" or not failing:
        return failed
    decision = ask(recorder.build(failed), failing, gate, key)
    asked = {id(c) for c in failing}
    recorder.checks = [decided(c, decision) if id(c) in asked else c for c in recorder.checks]
    recorder.approvals.append(decision.to_json())
    get_run_logger().info("Approval: %s", decision.in_words())
    return recorder.first_failure()


def where_a_person_answers(params: RetrainParams) -> tuple[RetrainParams, str | None]:
    """Return the parameters for a local run, with `ask` turned to `never` (and why) when no
    Prefect server is configured: an ephemeral API has nobody to ask."""
    if params.gate.approval != "ask" or get_current_settings().api.url:
        return params, None
    gate = params.gate.model_copy(update={"approval": "never"})
    return params.model_copy(update={"gate": gate}), NO_PERSON
