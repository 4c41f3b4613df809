# The project's image: the official Airflow image plus requirements.txt, built the official way
# (https://airflow.apache.org/docs/docker-stack/build.html, "Extending the image").
# docker-compose.yaml builds it for every Airflow service and for the MLflow server.
#
# The apache/airflow tag must match the apache-airflow pin in requirements.txt
# (tests/unit/test_docker_compose.py checks it). Python 3.11 is the interpreter that
# constraints.txt was resolved with.
FROM apache/airflow:3.3.2-python3.11

USER root
# LightGBM's wheel links against the system OpenMP runtime (libgomp.so.1) and does not bundle it.
RUN apt-get update \
  && apt-get install -y --no-install-recommends \
         libgomp1 \
  && apt-get autoremove -yqq --purge \
  && apt-get clean \
  && rm -rf /var/lib/apt/lists/*
# Mount points of the named volumes (dataset snapshots, MLflow artifacts). A new named volume
# copies the ownership of its mount point, so the airflow user (group 0, as everywhere in the
# official image) can write to them.
RUN mkdir -p /opt/airflow/storage /mlflow/artifacts \
  && chown -R airflow:0 /opt/airflow/storage /mlflow \
  && chmod -R g+rwX /opt/airflow/storage /mlflow
USER airflow

# Install as the airflow user; naming apache-airflow==${AIRFLOW_VERSION} stops pip from
# upgrading or downgrading Airflow while it resolves the project's requirements.
COPY requirements.txt constraints.txt /
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
      -r /requirements.txt \
      --constraint /constraints.txt
