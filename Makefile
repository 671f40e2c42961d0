# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exact versions of every package (the dev extra included), made by a pinned pip-tools.
LOCK := requirements.lock
PIP_TOOLS := pip-tools==7.6.2
LOCK_VENV := .venv-lock
EXAMPLE := data/example.csv
RUN_ARGS := --data $(EXAMPLE) --label is_fraud --label-time event_time --id transaction_id

# Offline machines: Prefect's telemetry would try DNS and log errors.
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: run run-collapse serve stop lock test lint typecheck pytest report-schema benchmark clean

# The exact versions of the lock file, then the project itself without resolving again;
# pip check fails when pyproject.toml asks for something the lock file lacks (run make lock).
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "retrain-guard needs Python 3.11+; run: make PYTHON=python3.11 ..." >&2; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

## lock: resolve pyproject.toml (with the dev extra) into requirements.lock, keeping the
## versions already locked where they still fit; `make lock UPGRADE=1` takes the newest of all
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || \
		{ $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet $(PIP_TOOLS); }
	$(LOCK_VENV)/bin/pip-compile --quiet --extra dev --strip-extras --allow-unsafe \
		--no-emit-find-links --no-emit-index-url $(if $(UPGRADE),--upgrade) \
		--output-file $(LOCK) pyproject.toml

$(EXAMPLE): flows/example_data.py | $(STAMP)
	$(BIN)/retrain-guard example --out $@

## run: train on the bundled example; the gate passes and a model is published under out/
run: $(STAMP) $(EXAMPLE)
	$(BIN)/retrain-guard run $(RUN_ARGS) --schema example --report out/report.json

## run-collapse: the same data without class weights; the gate halts (exit 1 is the expected outcome)
run-collapse: $(STAMP) $(EXAMPLE)
	@$(BIN)/retrain-guard run $(RUN_ARGS) --schema example --class-weight none \
		--report out/collapse-report.json; status=$$?; \
	if [ $$status -eq 1 ]; then echo "(exit 1: halted by the gate, as intended)"; else exit $$status; fi

## serve: local Prefect server (SQLite) on 127.0.0.1:$(PORT), work pool, deployments, worker
## (NOTIFY_URL=https://... also sends failed-run notifications there)
PORT ?= 4200
STACK_HOME ?= .prefect-local
serve: $(STAMP) $(EXAMPLE)
	$(BIN)/python -m retrain_guard.flows.local_stack start --home $(STACK_HOME) --port $(PORT) \
		$(if $(NOTIFY_URL),--notify-url $(NOTIFY_URL))

## stop: stop the worker (by its PID file), then `prefect server stop`
stop:
	$(BIN)/python -m retrain_guard.flows.local_stack stop --home $(STACK_HOME)

## test: lint, format check, type check and the whole test suite (unit, flow, end-to-end)
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

## report-schema: regenerate schemas/report.schema.json from the pydantic report model
report-schema: $(STAMP)
	$(BIN)/python -m retrain_guard.schemas.export > schemas/report.schema.json

## benchmark: time each stage of the flow at 1M rows (writes benchmarks/RESULTS.md)
benchmark: $(STAMP)
	$(BIN)/python -m benchmarks.stages --rows 1000000

clean:
	rm -rf out data .venv-lock .pytest_cache .mypy_cache .ruff_cache
