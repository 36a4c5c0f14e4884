# Astro CLI image (`astro dev start`, `astro deploy`): Astro Runtime 3.3 (Airflow 3.3) on Python 3.11,
# the Python requirements.lock is compiled for. docker-compose.yaml builds docker/airflow.Dockerfile.
FROM astrocrpublic.azurecr.io/runtime:3.3-2-python-3.11
# Astro's ONBUILD steps have installed packages.txt and requirements.txt and copied the project into
# /usr/local/airflow. Re-pin to the lock, except Airflow itself, which the runtime provides.
RUN grep -vE '^apache-airflow(-core|-task-sdk)?==' requirements.lock > /tmp/modelops-pins.txt \
 && pip install --no-cache-dir -c /tmp/modelops-pins.txt -r requirements.txt \
 && rm /tmp/modelops-pins.txt
# The core library (include/modelops) and the operators (plugins/modelops_airflow) are plain packages.
ENV PYTHONPATH=/usr/local/airflow/include:/usr/local/airflow/plugins
# Bytecode now, so no dag-processor re-parse compiles our modules from source (~30 ms a DAG file).
RUN python -m compileall -q include plugins dags
