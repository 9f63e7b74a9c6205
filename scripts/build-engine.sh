#!/usr/bin/env bash
# Builds the current Docker engine that the real-swarm suite runs beside
# Debian's docker.io 20.10, from Go modules (no registry, no Docker packages
# needed): dockerd of Docker 29.5.2 (the daemon module
# github.com/moby/moby/v2 at v2.0.0-beta.15, which is the commit tagged
# docker-v29.5.2) and runc 1.4.4, which this dockerd needs (Debian's runc
# 1.1.5 fails every container: "namespace time does not exist").
# Debian's containerd 1.6.20 runs it when the engine's directory comes first
# in the daemon's PATH, which the harness (internal/swarmtest) does.
#
# The binaries go to a cache outside the repository, built once per
# machine: a stamp with the versions makes later runs a no-op.
#
#   scripts/build-engine.sh          build unless the stamp says it is there
#   scripts/build-engine.sh -print   print the engine's directory and exit
#
# ENGINE_CACHE overrides the cache root (the harness reads the same
# variable). Needs Go, a C compiler, pkg-config and libseccomp-dev
# (scripts/install-deps.sh), and the Go module proxy; about 6 minutes on 2
# cores with a cold Go build cache.
set -euo pipefail

docker_version=29.5.2
moby_module=github.com/moby/moby/v2
moby_version=v2.0.0-beta.15
moby_commit=568f755              # docker-v29.5.2 = v2.0.0-beta.15
moby_time=2026-05-20T11:20:19Z   # the commit's time, as the build time
runc_module=github.com/opencontainers/runc
runc_version=v1.4.4

cache="${ENGINE_CACHE:-/var/cache/swarm_exporter/engines}"
dir="$cache/docker-$docker_version"
stamp="dockerd $moby_module@$moby_version (Docker $docker_version), runc $runc_module@$runc_version"

if [ "${1:-}" = "-print" ]; then
  echo "$dir"
  exit 0
fi
built() {
  [ -f "$dir/STAMP" ] && [ "$(head -n1 "$dir/STAMP")" = "$stamp" ] && [ -x "$dir/dockerd" ] && [ -x "$dir/runc" ]
}
if built; then
  exit 0
fi

export PATH="/usr/local/go/bin:$PATH"
GO="${GO:-go}"
mkdir -p "$cache"
# One build at a time; a run that waited finds the engine built.
exec 9>"$cache/.lock"
flock 9
if built; then
  exit 0
fi
tmp="$(mktemp -d "$cache/.build-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

t0=$(date +%s)
echo "build-engine: building Docker $docker_version ($moby_module@$moby_version) and runc $runc_version into $dir" >&2
# Without these variables the daemon reports its version as library-import;
# they are the ones moby's hack/make/.go-autogen sets.
pkg=$moby_module/dockerversion
GOBIN="$tmp" CGO_ENABLED=0 "$GO" install -tags exclude_graphdriver_btrfs \
  -ldflags "-X $pkg.Version=$docker_version -X $pkg.GitCommit=$moby_commit -X $pkg.BuildTime=$moby_time" \
  "$moby_module/cmd/dockerd@$moby_version"
# runc needs libseccomp: without the seccomp tag every container of this
# daemon fails ("seccomp: config provided but seccomp not supported").
GOBIN="$tmp" CGO_ENABLED=1 "$GO" install -tags seccomp "$runc_module@$runc_version"

"$tmp/dockerd" --version | grep -q "version $docker_version," ||
  { echo "build-engine: dockerd reports $("$tmp/dockerd" --version)" >&2; exit 1; }
"$tmp/runc" --version | grep -q "seccomp" ||
  { echo "build-engine: runc was built without seccomp" >&2; exit 1; }
{
  echo "$stamp"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) with $("$GO" env GOVERSION)"
  "$tmp/dockerd" --version
  "$tmp/runc" --version
} >"$tmp/STAMP"
rm -rf "$dir"
chmod 755 "$tmp"
mv "$tmp" "$dir"
trap - EXIT
echo "build-engine: done in $(( $(date +%s) - t0 )) s: $dir" >&2
