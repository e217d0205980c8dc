# secsip — the project's commands. `make test` is what CI runs.
SHELL := /bin/bash
CARGO ?= cargo
PCAP ?= tests/pcaps/sipp-call.pcap

.PHONY: all deps build release test unit lint run bench check-config rules-check clean

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

## run: until the appliance lands, replay the shipped captures through the engine and the
## shipped rules: a real SIPp call (all accepted), then a real sipvicious scan (all stopped)
run: release
	./target/release/secsip check --pcap $(PCAP) --verbose -c config/secsip.toml
	@echo
	./target/release/secsip rules test rules/ --pcap tests/pcaps/sipvicious-scan.pcap -c config/secsip.toml | tail -n 14

## rules-check: validate the shipped rules and print their schedule
rules-check: build
	./target/debug/secsip rules check rules/

## bench: parser and engine throughput on the realistic message mix (criterion)
bench:
	$(CARGO) bench --bench parse --bench rules

check-config: build
	./target/debug/secsip --check -c config/secsip.toml

clean:
	$(CARGO) clean
