# swarm_exporter. `make run` runs the exporter (against a throwaway demo swarm
# when this machine has none); `make test` runs the whole test suite. Both
# need root on Linux for the real Docker daemons; they install what they need.

export PATH := /usr/local/go/bin:$(PATH)
GO ?= go

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH   ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS := -s -w \
	-X $(VERSION_PKG).Version=$(VERSION) \
	-X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) \
	-X $(VERSION_PKG).BuildUser=$(shell id -un 2>/dev/null)@$(shell hostname 2>/dev/null) \
	-X $(VERSION_PKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

# Packages whose tests need no root: everything but the real-swarm suites.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -e /e2e -e /internal/swarmtest)

.PHONY: all build deps engine run test unit e2e e2e-full bench fuzz lint clean

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

# The whole suite: unit tests, then the real-swarm suites (as root).
test: deps unit e2e

unit:
	$(GO) vet ./...
	$(GO) test -race -count=1 $(UNIT_PKGS)

# The current Docker engine (29) the real-swarm suite runs beside Debian's
# 20.10, built once per machine into a cache outside the repository.
engine: deps
	./scripts/build-engine.sh

# Every real-swarm test on 20.10, and on Docker 29 too those that touch a
# difference between the engines (swarmtest.OnEachEngine), and mixed swarms.
e2e: build engine
	SWARMTEST=1 $(GO) test -count=1 -p 1 -timeout 40m ./internal/swarmtest/... ./e2e/...

# The full matrix: every real-swarm test on each engine alone, then the
# swarms of both engines. About twice as long as make e2e.
MIXED_TESTS = TestMixedEngines|TestTwoSwarmsAtOnce
e2e-full: build engine
	SWARMTEST=1 SWARMTEST_ENGINE=20.10 $(GO) test -count=1 -p 1 -timeout 60m ./internal/swarmtest/... ./e2e/...
	SWARMTEST=1 SWARMTEST_ENGINE=29 $(GO) test -count=1 -p 1 -timeout 60m ./internal/swarmtest/... ./e2e/...
	SWARMTEST=1 $(GO) test -count=1 -p 1 -timeout 20m -run '$(MIXED_TESTS)' ./internal/swarmtest/... ./e2e/...

bench: build
	$(GO) run ./tools/swarmbench

# Development only: CI replays the kept corpora through `make unit`.
FUZZTIME ?= 2m
fuzz:
	@for pkg in ./swarm ./placement ./health; do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -parallel 1 $$pkg || exit 1; \
		done; \
	done

clean:
	rm -f swarm_exporter
