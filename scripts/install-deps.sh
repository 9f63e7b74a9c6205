#!/usr/bin/env bash
# Installs what the test suite and the demo swarm need on a Debian machine:
# Docker's engine (real dockerd nodes), iproute2 and iptables (their network
# namespaces and bridge), Prometheus, promtool and Alertmanager (the alerting
# pipeline), curl (the benchmark's raw floor), and what building the current
# engine's runc needs (scripts/build-engine.sh: a C compiler, pkg-config and
# libseccomp's headers), and chattr (e2fsprogs: the harness's test of a
# leftover it cannot clear). Only missing packages are installed; the
# system's own Docker daemon is neither started nor needed.
set -euo pipefail

packages=(docker.io iproute2 iptables prometheus prometheus-alertmanager curl util-linux gcc libc6-dev pkg-config libseccomp-dev e2fsprogs)
commands=(/usr/sbin/dockerd /usr/sbin/ip /usr/sbin/iptables /usr/bin/prometheus /usr/bin/promtool /usr/bin/prometheus-alertmanager /usr/bin/curl /usr/bin/nsenter
  /usr/bin/gcc /usr/bin/pkg-config /usr/include/seccomp.h /usr/bin/chattr)

missing=0
for c in "${commands[@]}"; do
  [ -e "$c" ] || missing=1
done
if [ "$missing" = 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages (${packages[*]}); run as root or install them first" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
