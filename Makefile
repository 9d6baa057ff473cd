# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
BUILD      ?= build
BUILD_SAN  ?= build-sanitize
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc)

.PHONY: all deps build demo test test-sanitize fuzz bench format clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@MAKEFLAGS= cmake --build $(BUILD) -j $(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD)

# Every test (unit + end-to-end); ctest prints its "N tests passed" summary line.
# -j 3 on two cores: many end-to-end tests wait on sockets, timeouts and child processes.
test: build
	@cd $(BUILD) && ctest --output-on-failure -j 3

# The same tests built with AddressSanitizer + UndefinedBehaviorSanitizer (CI runs this too).
# Of the PostgreSQL runs (_pg), only the backend's own test and the two-node one: the whole
# set twice would not fit CI's 20 minutes, and `make test` runs all of them.
SAN_PG_TESTS ?= multinode;pg_registry
test-sanitize: deps
	@cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DXBOOT_SANITIZE=ON \
	  "-DXBOOT_PG_TESTS=$(SAN_PG_TESTS)" >/dev/null
	@MAKEFLAGS= cmake --build $(BUILD_SAN) -j $(JOBS)
	@cd $(BUILD_SAN) && XB_SANITIZE=1 ctest --output-on-failure -j 2

# Every libFuzzer harness in fuzz/ for FUZZ_SECONDS each, seeded from the fixtures (needs clang).
fuzz:
	@bash scripts/install-deps.sh fuzz
	@cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang -DXBOOT_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@MAKEFLAGS= cmake --build $(BUILD_FUZZ) -j $(JOBS) >/dev/null
	@bash scripts/run-fuzzers.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

# xbootd vs cfssl serve vs the crypto floor, one table (bench/run.sh; docs/PERFORMANCE.md).
# BENCH_ARGS: e.g. --quick, --full, --fleet.
BENCH_ARGS ?=
bench: build
	@bash scripts/install-deps.sh bench
	@BUILD=$(BUILD) bash bench/run.sh --no-build $(BENCH_ARGS)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ) demo
