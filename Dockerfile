# syntax=docker/dockerfile:1
# One image per function, all from this file. skaffold.yaml builds it four times with the
# build args FUNCTION_DIR (the folder under functions/), FUNCTION_TARGET and
# FUNCTION_SIGNATURE_TYPE; every image also carries the shared package and the patient-mgt
# console script (the migration Job runs `patient-mgt migrate` in the jobs image).
#
# Not Google's buildpacks: they install requirements.txt or resolve pyproject.toml afresh,
# while this project's contract is the hashed requirements.lock (the versions CI tested).
#
# Runtime contract (knative/app/services.yaml): uid/gid 10001, read-only root filesystem
# with an emptyDir on /tmp, port from $PORT (Knative injects it; functions-framework reads it).
# The command is functions-framework's, through `python -m shared.serve`: the same app and gunicorn
# server, with gunicorn's own error answers (malformed requests) in problem+json.
# `make image-test` runs each image that way (tests/images).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- 1. every locked distribution as a wheel, hash-checked, plus the project's own wheel ---
FROM ${PYTHON_IMAGE} AS wheels
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.lock ./
# The lock also pins the test tools; they are downloaded here and never installed below.
RUN pip wheel --require-hashes --no-deps --wheel-dir /wheels -r requirements.lock
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- 2. the runtime virtualenv: offline, from those wheels only ---
FROM ${PYTHON_IMAGE} AS venv
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY --from=wheels /wheels /wheels
# --no-index: pip can only pick the locked, hash-checked version of each runtime dependency
# (a dependency missing from the lock fails the build instead of floating).
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels patient-mgt \
 && /opt/venv/bin/pip check

# --- 3. the function image ---
FROM ${PYTHON_IMAGE}
# Up to the venv no build arg is in scope, so these layers are the same in all four images: a
# registry stores them and a node pulls them once, not once per function (180 MB of 380).
RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid 10001 --home-dir /home/app --create-home --shell /usr/sbin/nologin app
COPY --from=venv /opt/venv /opt/venv
ARG FUNCTION_DIR
ARG FUNCTION_TARGET
ARG FUNCTION_SIGNATURE_TYPE
WORKDIR /app
COPY functions/${FUNCTION_DIR}/ functions/${FUNCTION_DIR}/
# Compile now: at run time the filesystem is read-only and nothing could cache bytecode.
RUN test -n "${FUNCTION_DIR}" && test -n "${FUNCTION_TARGET}" && test -n "${FUNCTION_SIGNATURE_TYPE}" \
 && test -f "functions/${FUNCTION_DIR}/main.py" && python -m compileall -q functions
# FUNCTION_* are defaults; the Knative Service sets the same values explicitly.
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/app \
    FUNCTION_TARGET=${FUNCTION_TARGET} \
    FUNCTION_SIGNATURE_TYPE=${FUNCTION_SIGNATURE_TYPE} \
    FUNCTION_SOURCE=functions/${FUNCTION_DIR}/main.py
USER 10001:10001
EXPOSE 8080
# functions-framework's server with problem+json for gunicorn's own errors and the gunicorn settings a
# read-only container needs (shared/serve.py).
CMD ["python", "-m", "shared.serve"]
