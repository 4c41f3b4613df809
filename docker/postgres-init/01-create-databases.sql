-- The project's databases, next to the Airflow metadata database `airflow` (POSTGRES_DB).
--
-- The postgres image runs this file once, as POSTGRES_USER (the `airflow` superuser), on the
-- first start of an empty data volume (/docker-entrypoint-initdb.d). To run it again, remove
-- the volume: `docker compose down --volumes`. Passwords are local-development values, like the
-- official compose file's airflow/airflow.
--
-- Each role opens only its own database: task code reaches `retraining` through
-- AIRFLOW_CONN_RETRAINING_DB and can neither open the metadata database nor MLflow's.

-- Events table (model_retraining_events) and the demo production data.
CREATE ROLE retraining LOGIN PASSWORD 'retraining';
CREATE DATABASE retraining OWNER retraining;
REVOKE CONNECT ON DATABASE retraining FROM PUBLIC;

-- Backend store of the MLflow tracking server (experiments, runs, model registry).
CREATE ROLE mlflow LOGIN PASSWORD 'mlflow';
CREATE DATABASE mlflow OWNER mlflow;
REVOKE CONNECT ON DATABASE mlflow FROM PUBLIC;

-- The metadata database: Airflow components only.
REVOKE CONNECT ON DATABASE airflow FROM PUBLIC;
