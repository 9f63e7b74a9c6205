# swarm_exporter. `make run` runs the exporter (against a throwaway demo swarm
# when this machine has none); `make test` runs the whole test suite. Both
# need root on Linux for the real Docker daemons; they install what they need.
#
#   make build   the binary, stamped with its version (scripts/ldflags.sh)
#   make unit    the tests that need no root (a minute or two)
#   make e2e     the real-swarm suites (root; tens of minutes), some on
#                Docker 29 as well as Debian's 20.10 (make engine builds it)
#   make lint    go vet and staticcheck (staticcheck.conf)
#   make test    lint, unit and e2e: what CI runs (.ci/run)
#   make bench   the scale benchmarks (docs/benchmarks.md)
#   make fuzz    each fuzz target for FUZZTIME (development only)

export PATH := /usr/local/go/bin:$(PATH)
GO ?= go

# The version stamp, also the Dockerfile's. VERSION, REVISION and BRANCH
# override what git says.
LDFLAGS = $(shell VERSION='$(VERSION)' REVISION='$(REVISION)' BRANCH='$(BRANCH)' sh scripts/ldflags.sh)

# staticcheck, pinned: `go run` fetches and builds it, nothing to install.
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK = $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Packages whose tests need no root: everything but the real-swarm suites.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -e /e2e -e /internal/swarmtest)
# Packages with benchmarks of a scrape's stages.
BENCH_PKGS = ./swarm ./report ./collector
# Packages with fuzz targets.
FUZZ_PKGS = ./swarm ./placement ./health

.PHONY: all build deps engine run test unit e2e e2e-full lint bench fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o swarm_exporter .

deps:
	./scripts/install-deps.sh

# The exporter against this machine's swarm, or against a demo swarm.
# (Built, not `go run`: go run exits 1 after Ctrl-C whatever the program does.)
run: deps build
	$(GO) build -o .build/demo ./tools/demo
	./.build/demo -exporter ./swarm_exporter

# The whole suite: lint, unit tests, then the real-swarm suites (as root).
test: deps lint unit e2e

lint:
	$(GO) vet ./...
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 $(UNIT_PKGS)

# The current Docker engine (29) the real-swarm suite runs beside Debian's
# 20.10, built once per machine into a cache outside the repository.
engine: deps
	./scripts/build-engine.sh

# Every real-swarm test on 20.10, and on Docker 29 too those that touch a
# difference between the engines (swarmtest.OnEachEngine), and mixed swarms.
e2e: build engine
	SWARMTEST=1 $(GO) test -count=1 -p 1 -timeout 60m ./internal/swarmtest/... ./e2e/...

# The full matrix: every real-swarm test on each engine alone, then the
# swarms of both engines. About twice as long as make e2e.
MIXED_TESTS = TestMixedEngines|TestTwoSwarmsAtOnce
e2e-full: build engine
	SWARMTEST=1 SWARMTEST_ENGINE=20.10 $(GO) test -count=1 -p 1 -timeout 60m ./internal/swarmtest/... ./e2e/...
	SWARMTEST=1 SWARMTEST_ENGINE=29 $(GO) test -count=1 -p 1 -timeout 60m ./internal/swarmtest/... ./e2e/...
	SWARMTEST=1 $(GO) test -count=1 -p 1 -timeout 20m -run '$(MIXED_TESTS)' ./internal/swarmtest/... ./e2e/...

# The stages of a scrape on their own (go test benchmarks), then whole
# scrapes of every synthetic size against separate processes (swarmbench).
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(BENCH_PKGS)
	$(GO) run ./tools/swarmbench

# Development only: CI replays the kept corpora through `make unit`.
FUZZTIME ?= 2m
fuzz:
	@for pkg in $(FUZZ_PKGS); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -parallel 1 $$pkg || exit 1; \
		done; \
	done

clean:
	rm -f swarm_exporter
	rm -rf .build
