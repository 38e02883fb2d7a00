# syntax=docker/dockerfile:1
# One image for every govpulse process: the compose service picks the command (streams, sink,
# dashboard, migrate, topics apply, schemas register, simulate). Installed from pyproject.toml
# with `pip install .`, so the image runs exactly the pinned dependencies the tests ran on.
# Every dependency ships a manylinux wheel for CPython 3.11, so no compiler is needed.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the project and its dependencies into a virtual environment ---------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/govpulse
# Dependencies change less often than code: install them in their own layer.
COPY pyproject.toml README.md ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))\
    ["project"]["dependencies"]))' > /tmp/requirements.txt \
    && /opt/govpulse/bin/pip install -r /tmp/requirements.txt
COPY govpulse ./govpulse
COPY schemas ./schemas
COPY producers ./producers
COPY streams ./streams
COPY sinks ./sinks
COPY dashboard ./dashboard
COPY monitoring ./monitoring
COPY embedded ./embedded
RUN /opt/govpulse/bin/pip install --no-deps . \
    && /opt/govpulse/bin/govpulse --help >/dev/null

# --- run: the virtual environment only, as an unprivileged user ------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="govpulse" \
      org.opencontainers.image.description="Live activity of Thai government agencies" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 govpulse \
    && useradd --system --uid 10001 --gid govpulse --home-dir /var/lib/govpulse \
       --create-home --shell /usr/sbin/nologin govpulse
COPY --from=build /opt/govpulse /opt/govpulse
# GOVPULSE_BIND_HOST: inside a container the metrics (and dashboard) servers must listen on
# every interface, or Prometheus in another container cannot reach them.
ENV PATH=/opt/govpulse/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GOVPULSE_DATA_DIR=/var/lib/govpulse \
    GOVPULSE_BIND_HOST=0.0.0.0
USER govpulse:govpulse
# Faust keeps its worker state in the working directory: make it the writable data directory.
WORKDIR /var/lib/govpulse
# dashboard, and the /metrics ports of simulate, streams, sink, dashboard
EXPOSE 8088 9101 9102 9103 9104
ENTRYPOINT ["govpulse"]
CMD ["--help"]
