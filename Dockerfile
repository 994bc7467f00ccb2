# syntax=docker/dockerfile:1
# One Dockerfile, three images:
#   docker build --target api        -t diffq-api .         (no torch)
#   docker build --target worker-cpu -t diffq-worker-cpu .  (CPU torch)
#   docker build --target worker-gpu -t diffq-worker-gpu .  (CUDA torch; run with the NVIDIA container toolkit)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /app /data/outputs /models \
 && chown app:app /data/outputs /models
WORKDIR /app
COPY pyproject.toml README.md models.yaml ./
COPY api ./api
COPY shared ./shared
COPY worker ./worker
COPY templates ./templates
COPY bin/docker-entrypoint ./bin/docker-entrypoint
ENV OUTPUT_DIR=/data/outputs \
    MODEL_CACHE_DIR=/models \
    MODELS_FILE=/app/models.yaml \
    TEMPLATES_DIR=/app/templates
ENTRYPOINT ["/app/bin/docker-entrypoint"]

FROM base AS api
RUN pip install --no-cache-dir .
USER 10001:10001
EXPOSE 5001
HEALTHCHECK --interval=15s --timeout=6s --start-period=20s --retries=3 CMD ["/app/bin/docker-entrypoint", "healthcheck-api"]
CMD ["api"]

FROM base AS worker-cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# The worker extra's versions are pinned in pyproject.toml, which hadolint cannot see.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==2.13.0 \
 && pip install --no-cache-dir ".[worker]" \
 && pip install --no-cache-dir --no-deps open-clip-torch==3.3.0
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 CMD ["/app/bin/docker-entrypoint", "healthcheck-worker"]
CMD ["worker"]

FROM base AS worker-gpu
# PyPI's torch wheels bundle the CUDA runtime; the host needs only the NVIDIA driver and toolkit.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir torch==2.13.0 \
 && pip install --no-cache-dir ".[worker]" \
 && pip install --no-cache-dir --no-deps open-clip-torch==3.3.0
USER 10001:10001
ENV DEVICE=cuda
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=3 CMD ["/app/bin/docker-entrypoint", "healthcheck-worker"]
CMD ["worker"]
