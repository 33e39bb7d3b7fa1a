# The serving base (package.dockerfile in mlops.yaml), written by `mlops init`: Python, the
# pinned requirements and serve.py (/health, /predict, and the capture contract).
# `mlops package` builds it once per content of its build context (tag serve-<hash> in
# package.repository) and layers each model on top without a Docker daemon.
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
COPY serve.py /app/serve.py
EXPOSE 8080
CMD ["python3", "/app/serve.py"]
