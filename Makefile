# proxy-router: every target installs what it needs (npm packages from package-lock.json, Rust crates
# through cargo) and is safe to run again.
#
#   make test            everything CI runs: ABI checks, forge suite, rustfmt, clippy, Rust tests
#   make contracts       forge build into contracts/out
#   make test-contracts  forge test
#   make abi             refresh proxy-router/abi/*.json from contracts/out (commit the result)
#   make demo            a local marketplace: anvil, contracts, a provider and a consumer router, one chat
#   make swagger-check   load the node's Swagger UI in headless Chromium (needs Debian's chromium package)
#   make bench           relay benchmark vs direct, nginx and LiteLLM (installs both; docs/benchmarks.md)
#   make python-deps     the official openai Python client in target/venv (for the client test)

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
FORGE := $(CURDIR)/node_modules/.bin/forge
NPM_STAMP := node_modules/.installed

.PHONY: all contracts test-contracts abi check-abi lint python-deps test-rust test demo swagger-check bench bench-deps clean

all: contracts

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

contracts: $(NPM_STAMP)
	cd contracts && $(FORGE) build

test-contracts: contracts
	cd contracts && $(FORGE) test

abi: contracts
	node contracts/tools/export-abi.js

# The reference ABI must be fully present, and the committed Rust ABI files must match the build.
check-abi: contracts
	node contracts/tools/check-abi.js
	node contracts/tools/export-abi.js --check

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# The Python packages the tests use as clients (tests/python/requirements.txt), in a venv under target/.
VENV := target/venv
VENV_STAMP := $(VENV)/.installed

$(VENV_STAMP): tests/python/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

python-deps: $(VENV_STAMP)

# The Rust end-to-end tests start anvil from node_modules and deploy contracts/out. The last line sums
# every `test result:` line of cargo (unit, integration and doc tests) into one closing count.
test-rust: contracts python-deps
	mkdir -p target
	cargo test --workspace --locked 2>&1 | tee target/test-rust.log
	awk '/^test result:/ { p += $$4; f += $$6; i += $$8 } \
	  END { printf "rust tests: %d passed, %d failed, %d skipped\n", p, f, i }' target/test-rust.log

test: check-abi test-contracts lint test-rust

# The local marketplace demo (tests/src/bin/demo.rs): prints each step, then keeps running until Ctrl-C.
# DEMO_BACKEND_URL (+ DEMO_BACKEND_MODEL) uses a real OpenAI-compatible chat endpoint instead of the stand-in.
demo: contracts
	cargo run --quiet --locked -p e2e-tests --bin demo

# Starts anvil and a node, renders /swagger/index.html in headless Chromium (CHROMIUM, default
# /usr/bin/chromium) and checks every operation of the spec is shown.
swagger-check: contracts
	cargo run --quiet --locked -p e2e-tests --bin swagger-check

# The relay benchmark (tests/src/bin/bench.rs): the fake backend direct, nginx (Debian's package, run with
# its own configuration under target/bench), the LiteLLM proxy (bench/requirements.txt, in
# target/bench-venv) and our consumer + provider routers in release, each driven by the same load
# generator. Writes docs/benchmarks.json and the tables of docs/benchmarks.md. Loopback only.
BENCH_VENV := target/bench-venv
BENCH_VENV_STAMP := $(BENCH_VENV)/.installed

$(BENCH_VENV_STAMP): bench/requirements.txt
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

bench-deps: $(BENCH_VENV_STAMP)
	@if [ ! -x "$${NGINX:-/usr/sbin/nginx}" ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq nginx; \
	fi

bench: contracts bench-deps
	cargo build --release --locked -p proxy-router --bin proxy-router -p e2e-tests --bin bench
	ulimit -n 65536 2>/dev/null || ulimit -n "$$(ulimit -Hn)"; \
	  ROUTER_BINARY=target/release/proxy-router target/release/bench

clean:
	cargo clean
	rm -rf contracts/out contracts/cache contracts/broadcast
