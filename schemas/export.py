"""Print the JSON Schema of the report:
`python -m retrain_guard.schemas.export > schemas/report.schema.json`."""

import json

from retrain_guard.schemas.report import Report


def report_json_schema() -> str:
    """Return the report's JSON Schema as stable, indented text."""
    return (
        json.dumps(Report.model_json_schema(mode="serialization"), indent=2, sort_keys=True) + "\n"
    )


if __name__ == "__main__":
    print(report_json_schema(), end="")
