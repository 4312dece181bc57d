# Herald: `make run` starts a server, `make test` runs every test.
CARGO ?= cargo

.PHONY: run test bench bench-load bench-full lint fmt doc ci

## Start herald on 127.0.0.1:8080 with the embedded in-memory log.
run:
	$(CARGO) build --release -p herald-server --bin herald
	@echo
	@echo "Herald on http://127.0.0.1:8080 (Ctrl-C stops it); web console at http://127.0.0.1:8080/"
	@echo "  subscribe: curl -N 'http://127.0.0.1:8080/events?topic=demo.%3E'"
	@echo "  publish:   curl -d '{\"topic\":\"demo.hello\",\"data\":\"hi\"}' http://127.0.0.1:8080/publish"
	@echo "  browser:   open http://127.0.0.1:8080/healthz, then in the console:"
	@echo "             new EventSource('/events?topic=demo.>').onmessage = (e) => console.log(e.lastEventId, e.data)"
	@echo
	$(CARGO) run --release --quiet -p herald-server --bin herald -- serve

## Every test: unit, integration, end-to-end against the real binary, doctests.
## Cargo builds the herald binary for the end-to-end tests (crates/server/tests).
test:
	$(CARGO) test --workspace

## Criterion benchmarks and a short load scenario (figures: docs/benchmarks.md).
bench:
	$(CARGO) bench -p herald-bus --bench fanout
	$(CARGO) build --release -p herald-server -p herald-loadgen
	bench/compare.sh a

## One load scenario (a-f) against Herald and nchan: make bench-load SCENARIO=b SIZE=full
bench-load:
	$(CARGO) build --release -p herald-server -p herald-loadgen
	SIZE=$(or $(SIZE),small) bench/compare.sh $(or $(SCENARIO),a)

## Every load scenario at full size (long: tens of minutes).
bench-full:
	$(CARGO) build --release -p herald-server -p herald-loadgen
	for s in a b c d e f; do SIZE=full bench/compare.sh $$s || exit 1; done

## Formatting and clippy, warnings denied.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## API docs, warnings denied.
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

## What CI runs.
ci: lint test doc
