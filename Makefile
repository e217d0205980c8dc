# secsip — the project's commands. `make test` is what CI runs.
SHELL := /bin/bash
CARGO ?= cargo
PCAP ?= tests/pcaps/sipp-call.pcap

.PHONY: all deps build release test unit lint run bench check-config clean

all: build

deps:
	@bash tests/install-deps.sh

build:
	$(CARGO) build

release:
	$(CARGO) build --release

## test: install what is missing, then the whole suite (unit, property, end-to-end, namespaces)
test: deps
	$(CARGO) build --all-targets
	$(CARGO) test --no-fail-fast
	$(CARGO) run --quiet -- --check -c config/secsip.toml
	$(CARGO) clippy --all-targets --quiet -- -D warnings

## run: until the appliance lands, replay the shipped SIPp capture through the engine
run: release
	./target/release/secsip check --pcap $(PCAP) --verbose -c config/secsip.toml

## bench: parser and engine throughput on the realistic message mix (criterion)
bench:
	$(CARGO) bench --bench parse

check-config: build
	./target/debug/secsip --check -c config/secsip.toml

clean:
	$(CARGO) clean
