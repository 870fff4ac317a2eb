# syntax=docker/dockerfile:1
# One image for every service of docker-compose.yml: api, migrate, ray-head, ray-worker.
#   docker build -t finetune-sweeps:latest .                              (CPU torch)
#   docker build --build-arg TORCH_VARIANT=cu128 -t finetune-sweeps:gpu .  (CUDA torch)
# Every image joining one Ray cluster must share the Python and Ray versions: keep
# RAY_VERSION identical across builds.
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
# "cpu" or a CUDA variant published for TORCH_VERSION on download.pytorch.org (e.g. cu128).
ARG TORCH_VARIANT=cpu
ARG RAY_VERSION=2.60.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, from the PyTorch index: otherwise `pip install .` would resolve the
# default (multi-GB CUDA) wheel from PyPI.  Its own layer, so code edits keep it cached.
RUN pip install "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY api_schemas ./api_schemas
COPY finetune_sweeps ./finetune_sweeps
COPY service ./service
COPY workers ./workers
COPY migrations ./migrations
# ray[default] adds the dashboard and the Ray Client server (ports 8265, 10001).
# Migrations are package data: `sweeps migrate` needs no source checkout.
RUN pip install . "ray[default]==${RAY_VERSION}" \
    && rm -rf /src

RUN useradd --create-home --uid 10001 sweeps
USER sweeps
WORKDIR /home/sweeps

EXPOSE 8000
# No secrets here: compose (or the operator) supplies SWEEPS_* and RAY_AUTH_* at run time.
CMD ["sweeps", "serve", "--host", "0.0.0.0", "--port", "8000"]
