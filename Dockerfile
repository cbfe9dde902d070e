# sip-trunks: one image for every process of the service (worker, relay, migrate, topics...).
#   docker build -t sip-trunks .
#   docker run --rm sip-trunks --help

# Build wheels for the contracts, the service and all their dependencies.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY contracts/ contracts/
COPY pyproject.toml ./
COPY service/ service/
RUN pip wheel --wheel-dir /wheels ./contracts .

FROM python:3.11-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/data
# Non-editable install from the wheels only (no dev extras, no sources left in the image).
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels sip-trunk-service
# /data is created and owned before VOLUME so a fresh named volume inherits the ownership.
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home sip \
    && mkdir /data && chown sip:sip /data
VOLUME ["/data"]
WORKDIR /data
USER sip
ENTRYPOINT ["sip-trunks"]
CMD ["--help"]
