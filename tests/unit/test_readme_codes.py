"""Every code a run can report has a row in README's "Failure and check codes" table."""

import re

from flows.retrain import INPUT_UNREADABLE, NO_FEATURES, OUTPUT_DIR
from tasks.parallel import RUNNER_CODE
from tasks.reporting import RETRAIN_CHECKS
from tasks.validation import EMPTY_CODE
from tests.conftest import REPO


def test_every_flow_code_has_a_row_in_the_readme_table() -> None:
    text = (REPO / "README.md").read_text()
    table = text.split("### Failure and check codes", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE))
    codes = {code for code, _ in RETRAIN_CHECKS} | {
        INPUT_UNREADABLE,
        NO_FEATURES,
        OUTPUT_DIR,
        EMPTY_CODE,
        RUNNER_CODE,
    }
    assert codes - listed == set()
