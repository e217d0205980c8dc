# secsip — the project's commands. `make test` is what CI runs.
SHELL := /bin/bash
CARGO ?= cargo
PCAP ?= tests/pcaps/sipp-call.pcap

.PHONY: all deps build release dist ansible-test web-test fuzz fuzz-merge test unit lint run replay bench perf perf-engine check-config rules-check clean

all: build

deps:
	@bash tests/install-deps.sh

build:
	$(CARGO) build

release:
	$(CARGO) build --release

## dist: the release tarball target/dist/secsip-<version>-<arch>.tar.gz (binary, config, rules,
## systemd unit) that the Ansible role installs
dist: release
	bash dist/make-dist.sh

# As root, a test that cannot run (no namespaces, a tool missing) fails instead of skipping
# (tests/lib/require.sh, tests/common/appliance.rs `skipped`); set SECSIP_REQUIRE_NETNS=0 to allow skips.
REQUIRE_NETNS = SECSIP_REQUIRE_NETNS=$${SECSIP_REQUIRE_NETNS:-$$( [ "$$(id -u)" = 0 ] && echo 1 || echo 0)}

## ansible-test: lint the Ansible role, apply it twice into target/ansible-root (second run
## changed=0), systemd-analyze verify the unit, bad variables and rules refused before they
## land; then twice into a Debian 12 root (debootstrap, cached) through the chroot connection;
## then a rules-only change reloads a running testbed appliance (namespaces, SIPp calls held)
ARTIFACT = target/dist/secsip-$(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)-$(shell uname -m).tar.gz
ansible-test: dist
	bash tests/ansible/run.sh $(ARTIFACT)
	$(REQUIRE_NETNS) bash tests/ansible/chroot.sh $(ARTIFACT)
	$(REQUIRE_NETNS) bash tests/ansible/reload.sh $(ARTIFACT)

## web-test: the web manager in headless Chromium (Debian's, driven by playwright-core) against
## the appliance in the testbed's namespaces: a rule added in the page's candidate editor (typo
## flagged at its line, fixed, committed) blocks a sipvicious scan and its hit counter goes up;
## screenshots in target/web-test/shots (root; skipped otherwise unless SECSIP_REQUIRE_NETNS=1)
web-test: build
	$(REQUIRE_NETNS) bash tests/web/run.sh target/debug/secsip

## fuzz: every coverage-guided target (fuzz/fuzz_targets: frame decoder, SIP parser, the whole
## engine with the shipped rules, TCP reassembly and stream framing, WebSocket framer, URI
## normalisers) for FUZZ_SECONDS each, from the kept corpus (fuzz/corpus, read only; new inputs
## go to target/fuzz). A crash fails the run and names the input: copy it into
## fuzz/regressions/<target>/ and `cargo test --test fuzz_corpus` replays it from then on.
FUZZ_SECONDS ?= 20
FUZZ_TARGETS ?= frame sip engine stream websocket normal
fuzz:
	@bash tests/lib/fuzz.sh run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

## fuzz-merge: minimise what the runs found into the kept corpus (then commit fuzz/corpus)
fuzz-merge:
	@bash tests/lib/fuzz.sh merge 0 $(FUZZ_TARGETS)

## test: install what is missing, then the whole suite (unit, property, end-to-end, namespaces)
test: deps
	$(CARGO) build --all-targets
	$(REQUIRE_NETNS) $(CARGO) test --no-fail-fast
	$(CARGO) run --quiet -- --check -c config/secsip.toml
	$(CARGO) clippy --all-targets --quiet -- -D warnings
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory ansible-test
	$(MAKE) --no-print-directory web-test

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

## perf: secsip-perf's network run (root, under 10 minutes): the appliance against a plain
## Linux bridge under SIPp call and OPTIONS ladders, latency at 25/50/75% of the bridge's
## maximum, and the rule-count sweep; report.json, report.md and SVG plots in perf/out/<time>/
## (PERF_ARGS=--quick for a run under 2 minutes, PERF_ARGS="--out DIR" elsewhere)
perf: deps
	$(CARGO) build --release --bin secsip --bin secsip-perf
	./target/release/secsip-perf $(PERF_ARGS)

## perf-engine: the rule engine alone, without the network (messages/s per core, ns/message)
perf-engine:
	$(CARGO) build --release --bin secsip-perf
	./target/release/secsip-perf engine $(PERF_ARGS)

## bench: parser and engine throughput on the realistic message mix (criterion)
bench:
	$(CARGO) bench --bench parse --bench rules

check-config: build
	./target/debug/secsip --check -c config/secsip.toml

clean:
	$(CARGO) clean
