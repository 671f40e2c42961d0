# The image the Docker and Kubernetes work pools run flows in. Builds from the repository alone:
#   docker build -t retrain-guard:0.1.0 .
# Flow code lives at /opt/retrain-guard (the deployments' working directory); training tables
# and outputs go on a volume at /srv/retrain-guard (see deploy/prefect-docker.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    RETRAIN_GUARD_HOME=/opt/retrain-guard

WORKDIR /opt/retrain-guard

# Dependencies first, at the versions of requirements.lock, so a code change does not
# reinstall them: an empty package of the same layout stands in for the code.
COPY pyproject.toml requirements.lock ./
RUN mkdir -p flows tasks/leakage schemas retrain_guard && touch README.md \
    && ln -s ../flows ../tasks ../schemas retrain_guard/ \
    && pip install -c requirements.lock '.[dask]' && pip uninstall -y retrain-guard \
    && rm -rf flows tasks schemas retrain_guard build ./*.egg-info

# retrain_guard/ holds the public API and links to flows/, tasks/ and schemas/.
COPY retrain_guard retrain_guard
COPY flows flows
COPY tasks tasks
COPY schemas schemas
COPY deploy deploy
RUN pip install --no-deps . \
    && retrain-guard example --out data/example.csv \
    && useradd --create-home --uid 1000 retrain \
    && mkdir -p /srv/retrain-guard && chown -R retrain /srv/retrain-guard /opt/retrain-guard

USER retrain
CMD ["retrain-guard", "--help"]
