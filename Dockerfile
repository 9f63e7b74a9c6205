# Multi-platform image of swarm_exporter:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(git describe --tags --always) -t swarm_exporter .
# The final stage is also what the end-to-end suite runs on its real swarm:
# it rebuilds this stage FROM scratch around the same static binary (no
# registry is reachable there), keeping the user, entrypoint and port.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
# The version stamp comes from scripts/ldflags.sh, as in `make build`; the
# build arguments reach it as environment variables.
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=unknown
ARG BUILD_USER=docker
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "$(sh scripts/ldflags.sh)" \
      -o /out/swarm_exporter .

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="swarm_exporter" \
      org.opencontainers.image.description="Prometheus exporter for the health of a Docker swarm" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/swarm-exporter/swarm_exporter"
COPY --from=build /out/swarm_exporter /bin/swarm_exporter
# 65532 is distroless's "nonroot". Reading the Docker socket needs its group:
# run with --group-add / user "65532:<socket gid>", or use a socket proxy.
USER 65532:65532
EXPOSE 9675
ENTRYPOINT ["/bin/swarm_exporter"]
