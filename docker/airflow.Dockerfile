# Image for docker-compose.yaml: the official Apache Airflow 3.3 image plus this package's pinned
# dependencies (requirements.lock pins the same Airflow the image ships, so nothing in Airflow moves).
# The Astro CLI uses ../Dockerfile instead (Astro Runtime).
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.lock /requirements.lock
RUN pip install --no-cache-dir -r /requirements.lock
# The project, so the image also runs without the compose bind mounts (they shadow these in dev).
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
COPY --chown=airflow:root include /opt/airflow/include
# The core library (include/modelops) and the operators (plugins/modelops_airflow) are plain packages.
ENV PYTHONPATH=/opt/airflow/include:/opt/airflow/plugins
# Bytecode now, so no dag-processor re-parse compiles our modules from source (~30 ms a DAG file).
RUN python -m compileall -q /opt/airflow/include /opt/airflow/plugins /opt/airflow/dags
