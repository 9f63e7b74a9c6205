#!/bin/sh
# Prints the -ldflags of a release build of swarm_exporter: a stripped
# binary stamped with its version for --version and swarm_exporter_build_info.
# The Makefile and the Dockerfile both build with it, so the stamp is defined
# once. VERSION, REVISION, BRANCH, BUILD_USER and BUILD_DATE override what it
# finds (git, the user, the clock); the Dockerfile passes them as build
# arguments, since its build context has no .git.
set -eu
cd "$(dirname "$0")/.."
git_or() { git "$@" 2>/dev/null || true; }
version=${VERSION:-$(git_or describe --tags --always --dirty)}
revision=${REVISION:-$(git_or rev-parse HEAD)}
branch=${BRANCH:-$(git_or rev-parse --abbrev-ref HEAD)}
build_user=${BUILD_USER:-$(id -un 2>/dev/null || echo unknown)@$(hostname 2>/dev/null || echo unknown)}
build_date=${BUILD_DATE:-$(date -u +%Y%m%d-%H:%M:%S)}
pkg=github.com/prometheus/common/version
echo "-s -w" \
  "-X $pkg.Version=${version:-dev}" \
  "-X $pkg.Revision=${revision:-unknown}" \
  "-X $pkg.Branch=${branch:-unknown}" \
  "-X $pkg.BuildUser=$build_user" \
  "-X $pkg.BuildDate=$build_date"
