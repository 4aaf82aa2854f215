# syntax=docker/dockerfile:1
# keyfob's image: `keyfob` is the entry point, so the command is a keyfob command
# (`serve`, `dispatcher`, `worker`, `sim`, `db upgrade` ...). deploy/compose.yaml runs one
# container per role; see README.md, "Deploying".

# Stage 1: build keyfob's wheel, and wheels of everything it needs, from the source tree.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Stage 2: the runtime: the wheels installed offline, no source tree, no build tools.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    KEYFOB_HOST=0.0.0.0 \
    KEYFOB_LOG_FORMAT=json
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels keyfob \
    && groupadd --system --gid 10001 keyfob \
    && useradd --system --uid 10001 --gid keyfob --home-dir /var/lib/keyfob --create-home \
       --shell /usr/sbin/nologin keyfob
# Unprivileged from here on (numeric, so that "run as non-root" checks can verify it). The
# working directory is where `serve` writes its demo credentials (keyfob-demo.json) and where
# an SQLite database would live.
USER 10001:10001
WORKDIR /var/lib/keyfob
EXPOSE 8080
ENTRYPOINT ["keyfob"]
CMD ["serve"]
