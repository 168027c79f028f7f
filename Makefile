# projsync — the two commands a person needs: `make run` and `make test`.
# Both install what is missing (scripts/install-deps), then build with Meson + ninja.

BUILD      ?= build
BUILD_SAN  ?= build-san
BUILD_REL  ?= build-release
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= $(sort $(notdir $(wildcard fuzz/corpus/*)))
PYTHON     ?= /usr/bin/python3
DATA       ?= $(CURDIR)/.run
export PROJSYNC_DB ?= $(DATA)/projsync.db

.PHONY: all deps test-deps build run test unit integration bench soak fuzz fuzz-deps clean

all: build

deps:
	@scripts/install-deps

test-deps:
	@scripts/install-deps --test
	@scripts/install-test-tools

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The C tests and the integration suites, all against a build with ASan and UBSan.
$(BUILD_SAN)/build.ninja:
	meson setup $(BUILD_SAN) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

test: test-deps $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)
	meson test -C $(BUILD_SAN) --print-errorlogs --num-processes 2
	SCREENSHOT_DIR=$(CURDIR)/$(BUILD_SAN)/screenshots PROJSYNC_BIN=$(CURDIR)/$(BUILD_SAN)/projsync $(PYTHON) -m pytest -q tests/integration tests/fakehub

unit: test-deps $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)
	meson test -C $(BUILD_SAN) --print-errorlogs

integration: test-deps $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)
	SCREENSHOT_DIR=$(CURDIR)/$(BUILD_SAN)/screenshots PROJSYNC_BIN=$(CURDIR)/$(BUILD_SAN)/projsync $(PYTHON) -m pytest -q tests/integration tests/fakehub

run: build
	@scripts/demo $(BUILD)/projsync

$(BUILD_REL)/build.ninja:
	meson setup $(BUILD_REL) --buildtype=release

bench: deps $(BUILD_REL)/build.ninja
	ninja -C $(BUILD_REL)
	PROJSYNC_BIN=$(CURDIR)/$(BUILD_REL)/projsync $(PYTHON) bench/sync_bench.py

# libFuzzer (clang): each fuzz/ target for FUZZ_SECONDS, one at a time, from its kept corpus.
# `make test` only replays the corpora (suite fuzz of the sanitizer build).
fuzz-deps:
	@scripts/install-deps --fuzz

$(BUILD_FUZZ)/build.ninja: | fuzz-deps
	CC=clang meson setup $(BUILD_FUZZ) --buildtype=debugoptimized -Dfuzzing=true \
		-Db_sanitize=address,undefined -Db_lundef=false

fuzz: fuzz-deps $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ) $(addprefix fuzz/,$(FUZZ_TARGETS))
	scripts/fuzz-run $(BUILD_FUZZ) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_REL) $(BUILD_FUZZ)
