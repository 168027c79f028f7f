# projsync — the two commands a person needs: `make run` and `make test`.
# Both install what is missing (scripts/install-deps), then build with Meson + ninja.

BUILD      ?= build
BUILD_SAN  ?= build-san
BUILD_REL  ?= build-release
PYTHON     ?= /usr/bin/python3
DATA       ?= $(CURDIR)/.run
export PROJSYNC_DB ?= $(DATA)/projsync.db

.PHONY: all deps test-deps build run test unit integration bench soak clean

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
	PROJSYNC_BIN=$(CURDIR)/$(BUILD_REL)/projsync $(PYTHON) bench/store_bench.py

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_REL)
