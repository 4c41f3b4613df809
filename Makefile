# The few commands a newcomer needs. Everything installs into .venv and keeps its state in .local/.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast lint psql airflow mlflow-ui parse-time clean

$(BIN)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

install: $(BIN)/.installed  ## create .venv with everything pinned

demo: install  ## run model_retraining over five six-hour windows on the embedded services
	$(BIN)/python scripts/demo.py

test: install  ## the whole test suite: every tier (what CI runs)
	$(BIN)/python -m pytest

FAST := not (integration or scheduler or faults or distributed or browser or bench)
test-fast: install  ## the developer loop: DAG and unit tests (PostgreSQL only), no whole DAG runs or servers
	$(BIN)/python -m pytest -m "$(FAST)" --durations=10

lint: install
	$(BIN)/ruff check dags include tests scripts

psql: install  ## a psql shell on the events database (the embedded one unless retraining_db is configured)
	$(BIN)/python scripts/psql.py

airflow: install  ## a real local Airflow (scheduler, api-server on :8080) on the demo's state
	scripts/airflow standalone

mlflow-ui: install  ## the MLflow UI on the demo's store, http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.local/mlflow/mlflow.db --port 5000

parse-time: install  ## how long the DAG processor needs to parse dags/
	$(BIN)/python scripts/parse_time.py

clean:  ## forget all local state (keeps .venv)
	rm -rf .local
