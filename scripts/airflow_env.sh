# Environment of the embedded default (sourced by the Makefile and the demo).
# Everything lives under $MODELOPS_HOME (default: <project>/.demo).
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MODELOPS_HOME="${MODELOPS_HOME:-$_root/.demo}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$MODELOPS_HOME/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$_root/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$_root/plugins}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
# Local-dev users of the embedded default only (SimpleAuthManager): admin and reviewer may approve
# (they are the config's approvers), viewer may look but not approve.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin,reviewer:user,viewer:viewer}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/passwords.json}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
# Local servers listen on loopback only; set AIRFLOW__API__HOST / MLFLOW_UI_HOST (e.g. 0.0.0.0) to expose them.
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export MLFLOW_UI_HOST="${MLFLOW_UI_HOST:-127.0.0.1}"
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-http://127.0.0.1:$AIRFLOW__API__PORT}"
export MODELOPS_AIRFLOW_API_URL="${MODELOPS_AIRFLOW_API_URL:-$AIRFLOW__API__BASE_URL}"
export AIRFLOW__LOGGING__BASE_LOG_FOLDER="${AIRFLOW__LOGGING__BASE_LOG_FOLDER:-$AIRFLOW_HOME/logs}"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$MODELOPS_HOME/mlflow.db}"
export PYTHONPATH="$_root/include:$_root/plugins${PYTHONPATH:+:$PYTHONPATH}"
unset _root
