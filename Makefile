# lago build. `make` builds bin/lago and every plugin into libexec/lago/plugins,
# the layout a fresh bin/lago searches (../libexec/lago/plugins beside it), and
# the example plugins into .cache/examples (see EXAMPLES).
SHELL := /bin/bash
GO ?= go
PREFIX ?= /usr/local
DESTDIR ?=
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
GOBIN_TOOLS := $(CURDIR)/.cache/tools
PLUGINS := provider-libvirt service-systemd service-sysvinit output-json builder-virtcustomize command-example
MODULES := proto sdk core cmd/lago $(addprefix plugins/,$(PLUGINS))
# EXAMPLES are the example out-of-tree plugins (docs/plugins/): each is its own
# module outside go.work that reaches sdk and proto through replace directives,
# so it builds as a third party's would (GOWORK=off). They go to EXAMPLES_BIN as
# lago-plugin-<name without kind>, not to libexec: a default lago never finds
# them, and `make install` leaves them out. LAGO_PLUGIN_PATH=$(EXAMPLES_BIN)
# turns them on.
EXAMPLES := provider-ssh output-markdown vmtype-tiny
# GOTEST_EXAMPLES are example Go test suites of programs using the Go API
# (docs/API.md); their tests need real VMs and run in the e2e suite.
GOTEST_EXAMPLES := gotest
EXAMPLES_BIN := $(CURDIR)/.cache/examples
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/lago-go/lago/core/version.Version=$(VERSION) -X main.version=$(VERSION)

.PHONY: all build builddeps plugins examples test e2e bench proto proto-check lint install clean tools check deps

all: build

build: builddeps bin/lago plugins examples

# builddeps fails in one line, before any compiler error, when a package the
# cgo parts need (libvirt's headers, pkg-config, gcc) is missing.
builddeps:
	@bash scripts/builddeps.sh

# bin/lago (package cmd/lago) is the front-end (help, completion, config,
# plugin list; no gRPC linked, static, fast to start); it execs
# libexec/lago/lago-engine (package cmd/lago/engine) for every verb that does
# real work. Both are the command line of cmd/lago/internal/cli.
bin/lago: FORCE
	@mkdir -p bin libexec/lago
	cd cmd/lago && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(CURDIR)/bin/lago .
	cd cmd/lago && $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(CURDIR)/libexec/lago/lago-engine ./engine

plugins: builddeps
	@mkdir -p libexec/lago/plugins
	@for p in $(PLUGINS); do \
	  echo "build lago-plugin-$$p"; \
	  (cd plugins/$$p && $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(CURDIR)/libexec/lago/plugins/lago-plugin-$$p .) || exit 1; \
	done

examples:
	@mkdir -p $(EXAMPLES_BIN)
	@for e in $(EXAMPLES); do \
	  echo "build example lago-plugin-$${e#*-}"; \
	  (cd examples/$$e && GOWORK=off $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(EXAMPLES_BIN)/lago-plugin-$${e#*-} .) || exit 1; \
	done

FORCE:

tools:
	@mkdir -p $(GOBIN_TOOLS)
	GOBIN=$(GOBIN_TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(GOBIN_TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

proto: tools
	cd proto && PATH=$(GOBIN_TOOLS):$$PATH protoc -I . \
	  --go_out=. --go_opt=module=github.com/lago-go/lago/proto \
	  --go-grpc_out=. --go-grpc_opt=module=github.com/lago-go/lago/proto \
	  $$(find lago -name '*.proto' | sort)

# proto-check fails when regenerating the protos changes the checked-in code.
proto-check: proto
	@git diff --exit-code -- proto || { echo "generated protobuf code is stale: run make proto and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto)" || { git status --porcelain -- proto; echo "make proto left untracked files"; exit 1; }

lint:
	@bad=$$(gofmt -l $(MODULES) $(addprefix examples/,$(EXAMPLES) $(GOTEST_EXAMPLES))); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy -diff >/dev/null) || { echo "$$m/go.mod is not tidy: run (cd $$m && go mod tidy)"; exit 1; }; done
	@for e in $(EXAMPLES); do (cd examples/$$e && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) mod tidy -diff >/dev/null) || { echo "examples/$$e: vet failed or go.mod is not tidy (GOWORK=off go mod tidy)"; exit 1; }; done
	@for e in $(GOTEST_EXAMPLES); do (cd examples/$$e && GOWORK=off $(GO) vet -tags e2e ./... && GOWORK=off $(GO) mod tidy -diff >/dev/null) || { echo "examples/$$e: vet failed or go.mod is not tidy (GOWORK=off go mod tidy)"; exit 1; }; done

# test runs every module's unit and in-process plugin tests with the race
# detector; the inventory's test needs the real ansible-inventory (make deps).
test: build
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && LAGO_REQUIRE_ANSIBLE=1 $(GO) test -race -count=1 ./...) || exit 1; done
	@for e in $(EXAMPLES); do echo "== examples/$$e"; (cd examples/$$e && GOWORK=off $(GO) test -race -count=1 ./...) || exit 1; done

# deps installs the Debian packages and tools everything below needs (root).
deps:
	bash scripts/deps.sh

# check is the README's test command and what CI runs.
check: proto-check lint test e2e

e2e: build
	./test/e2e/run.sh

bench: build
	./test/bench/run.sh

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec/lago/plugins
	install -m 0755 bin/lago $(DESTDIR)$(PREFIX)/bin/lago
	install -m 0755 libexec/lago/lago-engine $(DESTDIR)$(PREFIX)/libexec/lago/lago-engine
	@for p in $(PLUGINS); do install -m 0755 libexec/lago/plugins/lago-plugin-$$p $(DESTDIR)$(PREFIX)/libexec/lago/plugins/; done

clean:
	rm -rf bin libexec $(EXAMPLES_BIN)
