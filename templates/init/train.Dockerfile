# The training and evaluation image (train.build in mlops.yaml), written by `mlops init`.
# The code is not copied in: mlops mounts the repository read-only at /workspace.
# Build arguments (set them with MLOPS_BUILD_ARGS="NAME=value ..."):
#   PYTHON_IMAGE  the base image (default python:3.12-slim)
#   PIP_INSTALL   0 skips installing requirements.txt (for a base that already has them)
ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE}
ARG PIP_INSTALL=1
COPY requirements.txt /opt/mlops/requirements.txt
RUN if [ "$PIP_INSTALL" != 0 ]; then \
      python3 -m pip install --no-cache-dir --disable-pip-version-check -r /opt/mlops/requirements.txt; \
    fi
