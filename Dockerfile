# The service image: the gprune package with every dependency baked in, pinned by constraints.txt.
# One image serves the Ray head, the Ray GPU workers, the scheduler and the MLflow server
# (docker-compose.yml); nothing is installed when a container starts.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    TOKENIZERS_PARALLELISM=false \
    GPRUNE_DATA_DIR=/data

RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/gprune
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir -p gprune testbed workers sweep dashboards cli \
    && pip install -c constraints.txt -e . \
    && pip uninstall -y gprune-sweep
COPY . .
RUN pip install -c constraints.txt --no-deps -e .

# Runs unprivileged; sweep state, caches and reports go to /work (mount a volume there to keep them).
RUN mkdir /work && chown 1000:1000 /work
ENV HOME=/work
WORKDIR /work
USER 1000:1000
ENTRYPOINT ["gprune"]
CMD ["--help"]
