# MLflow tracking server for the compose stack: PostgreSQL backend store, S3 (MinIO) artefacts.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Build context: the repository root. The optional CA bundle (make image-context) is for
# networks whose egress re-signs TLS; it is used by pip here and removed.
COPY deploy/docker/context/README.md deploy/docker/context/ca-bundle.cr[t] /tmp/ctx/
RUN if [ -f /tmp/ctx/ca-bundle.crt ]; then export PIP_CERT=/tmp/ctx/ca-bundle.crt; fi \
 && apt-get update -q \
 && if ! command -v python3.11 >/dev/null; then \
      apt-get install -y -q --no-install-recommends python3 python3-venv; fi \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/mlflow \
 && /opt/mlflow/bin/pip install -q mlflow==3.17.2 'psycopg[binary]==3.3.9' boto3==1.44.5 \
 && useradd --uid 10002 --no-create-home --home-dir /tmp mlflow \
 && rm -rf /tmp/ctx
ENV PATH=/opt/mlflow/bin:$PATH MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1
USER 10002
EXPOSE 5000
CMD ["mlflow", "server", "--host=0.0.0.0", "--port=5000"]
