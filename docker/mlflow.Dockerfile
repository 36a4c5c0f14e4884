# MLflow tracking server for docker-compose: the official image plus the PostgreSQL driver and boto3
# (backend store on PostgreSQL, artifacts on MinIO/S3), pinned to the versions in requirements.lock.
FROM ghcr.io/mlflow/mlflow:v3.17.2
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir $(grep -E '^(psycopg2-binary|boto3|botocore|s3transfer)==' /tmp/requirements.lock) \
 && rm /tmp/requirements.lock
