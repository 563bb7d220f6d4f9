# syntax=docker/dockerfile:1
#
# The controller image: `controlplane serve` in the Deployment, `controlplane bootstrap` in its
# init container. Build context is the repository root (.dockerignore keeps it small):
#
#   docker build -t ghcr.io/controlplane-dev/controlplane:0.1.0 .
#
# Two stages: the first installs the package and its dependencies (runtime only, no test or dev
# extras) into a virtualenv; the second copies that virtualenv onto a clean base, so pip, the
# build backend and the source tree stay behind.
#
# Reproducible inputs:
# - the base image is pinned by digest. PYTHON_IMAGE below is python:3.11-slim as it was
#   published with Python 3.11.16 (Debian trixie), the multi-arch index digest that public
#   Dockerfiles pin for that tag. It was NOT resolved against a registry when it was written (no
#   registry was reachable): before relying on it, check it, and to move to a newer
#   python:3.11-slim, take the index digest (not a per-platform one, so amd64 and arm64 both
#   resolve) from `docker buildx imagetools inspect python:3.11-slim`, or override it:
#   `docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:... .`
# - the dependencies come from requirements.lock (`make lock`), every one pinned with the
#   hashes of its files: pip refuses anything else, then installs this package without
#   resolving again (--no-deps).

ARG PYTHON_IMAGE=python:3.11-slim@sha256:be1575ed968de893bd54f4c56315ff7c4736ce522c1bca08fd521731aafc0d76

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Every dependency ships manylinux wheels for amd64 and arm64, so no compiler is needed.
COPY requirements.lock ./
RUN pip install --no-compile --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY controlplane ./controlplane
RUN pip install --no-compile --no-deps . \
    # Byte-compile now: the container runs with a read-only root filesystem, so Python could
    # not cache .pyc files at run time and would recompile on every start.
    && python -m compileall -q -j 0 /opt/venv

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="controlplane" \
      org.opencontainers.image.description="Envoy xDS control plane for Kubernetes Ingress and IngressRoute" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric non-root user (the same one the manifests ask for), so the kubelet can verify
# runAsNonRoot without a passwd lookup. No files need to belong to it: nothing is written.
USER 65532:65532
# Envoy's health and xDS ports are the pod's business; 8000 is the controller's health server.
EXPOSE 8000
ENTRYPOINT ["controlplane"]
CMD ["serve"]
