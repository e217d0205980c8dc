# secsip — the project's commands. `make test` is what CI runs.
SHELL := /bin/bash
CARGO ?= cargo
PCAP ?= tests/pcaps/sipp-call.pcap

.PHONY: all deps build release test unit lint run replay bench check-config rules-check clean

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
	SECSIP_REQUIRE_NETNS=$${SECSIP_REQUIRE_NETNS:-$$( [ "$$(id -u)" = 0 ] && echo 1 || echo 0)} $(CARGO) test --no-fail-fast
	$(CARGO) run --quiet -- --check -c config/secsip.toml
	$(CARGO) clippy --all-targets --quiet -- -D warnings

## run: the appliance between two network namespaces with the shipped config and rules:
## SIPp calls and a sipvicious scan through it, then what passed and what was stopped
## (root; tears everything down at the end)
run: deps release
	bash tests/lib/demo.sh ./target/release/secsip

## replay: the shipped captures through the engine offline (no root needed)
replay: release
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
