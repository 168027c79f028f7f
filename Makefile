# projsync — the two commands a person needs: `make run` and `make test`.
# Both install what is missing (scripts/install-deps), then build with Meson + ninja.

BUILD      ?= build
BUILD_SAN  ?= build-san
BUILD_REL  ?= build-release
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= $(sort $(notdir $(wildcard fuzz/corpus/*)))
PYTHON     ?= /usr/bin/python3
# The integration suites run on this many pytest processes (pytest-xdist): most of a test is
# waiting on a server, git or PostgreSQL, so two processes on two cores take ~2/3 of the time.
# PYTEST_WORKERS=0 runs them in this process, one at a time. Tests marked `serial` (they restart
# the PostgreSQL server every test shares) run alone afterwards.
PYTEST_WORKERS ?= 2
DATA       ?= $(CURDIR)/.run
export PROJSYNC_DB ?= $(DATA)/projsync.db
# Where `make run` serves: `make run PORT=8421`, or `make run LISTEN=[::1]:8421`.
PORT       ?= 8420
LISTEN     ?= 127.0.0.1:$(PORT)
# make install: PREFIX=/usr/local, DESTDIR= (a staging root, as packagers use it).
PREFIX     ?= /usr/local
DESTDIR    ?=
BUILD_DEB  ?= build-deb
# make deb: the unit tests run under `make test` (with sanitizers); set DEB_BUILD_OPTIONS=
# to run them in the package build as well.
DEB_BUILD_OPTIONS ?= nocheck
VERSION    := $(shell sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build)

.PHONY: all deps test-deps build run test unit integration bench soak fuzz fuzz-deps clean install deb deb-test

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

# tests/pg/with-pg runs everything beside a private PostgreSQL server (stopped at the end, also
# on failure), so the store's tests and the integration suites run against both backends.
test: test-deps $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)
	tests/pg/with-pg sh -c '\
	  meson test -C $(BUILD_SAN) --print-errorlogs --num-processes 2 && \
	  export SCREENSHOT_DIR=$(CURDIR)/$(BUILD_SAN)/screenshots PROJSYNC_BIN=$(CURDIR)/$(BUILD_SAN)/projsync && \
	  $(PYTHON) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup -m "not serial" tests/integration tests/fakehub && \
	  $(PYTHON) -m pytest -q -m serial tests/integration tests/fakehub'

unit: test-deps $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)
	tests/pg/with-pg meson test -C $(BUILD_SAN) --print-errorlogs

integration: test-deps $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)
	SCREENSHOT_DIR=$(CURDIR)/$(BUILD_SAN)/screenshots PROJSYNC_BIN=$(CURDIR)/$(BUILD_SAN)/projsync \
	  tests/pg/with-pg sh -c '$(PYTHON) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup -m "not serial" \
	  tests/integration tests/fakehub && $(PYTHON) -m pytest -q -m serial tests/integration tests/fakehub'

# The soak run (tests/soak/soak.py): SOAK_MINUTES (default 30) of syncs, 1,000 SSE watchers,
# API reads, CLI syncs killed and GitHub faults against one server, then its checks. `make
# test` runs a 1-minute version (tests/integration/test_soak.py).
SOAK_MINUTES ?= 30
soak: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)
	SOAK_MINUTES=$(SOAK_MINUTES) PROJSYNC_BIN=$(CURDIR)/$(BUILD)/projsync \
	  $(PYTHON) tests/soak/soak.py

run: build
	@PROJSYNC_LISTEN='$(LISTEN)' scripts/demo $(BUILD)/projsync

$(BUILD_REL)/build.ninja:
	meson setup $(BUILD_REL) --buildtype=release

bench: deps $(BUILD_REL)/build.ninja
	ninja -C $(BUILD_REL)
	PROJSYNC_BIN=$(CURDIR)/$(BUILD_REL)/projsync $(PYTHON) bench/sync_bench.py
	PROJSYNC_BIN=$(CURDIR)/$(BUILD_REL)/projsync $(PYTHON) bench/git_url_bench.py
	PROJSYNC_BIN=$(CURDIR)/$(BUILD_REL)/projsync $(PYTHON) bench/store_bench.py
	@# Code search and content diffs; BENCH_REPO=<a clone of libgit2> adds the real-repository
	@# figures of docs/performance.md (without it: the generated 100k-file repository only).
	PROJSYNC_BIN=$(CURDIR)/$(BUILD_REL)/projsync $(PYTHON) bench/grep_bench.py
	if [ -n "$$BENCH_REPO" ]; then PROJSYNC_BIN=$(CURDIR)/$(BUILD_REL)/projsync $(PYTHON) bench/diff_bench.py; fi
	PROJSYNC_BIN=$(CURDIR)/$(BUILD_REL)/projsync $(PYTHON) bench/diff_page_bench.py
	@# issue 11: 1,000 projects on --every 10s, 1% changing per minute (BENCH_SCHEDULE="300 180" for less).
	PROJSYNC_BIN=$(CURDIR)/$(BUILD_REL)/projsync $(PYTHON) bench/schedule_bench.py $(BENCH_SCHEDULE)
	@# PostgreSQL beside SQLite, and several nodes, on a private server (needs `make test-deps`).
	PROJSYNC_BIN=$(CURDIR)/$(BUILD_REL)/projsync tests/pg/with-pg $(PYTHON) bench/pg_bench.py

# The binary, man pages, systemd unit, its settings file and the bash completion, from a
# release build: under PREFIX, inside DESTDIR when given.
install: deps $(BUILD_REL)/build.ninja
	meson configure $(BUILD_REL) -Dprefix=$(PREFIX) -Dman=enabled
	ninja -C $(BUILD_REL)
	DESTDIR="$(DESTDIR)" meson install -C $(BUILD_REL) --no-rebuild

# A Debian package built with dpkg-buildpackage from a copy of this tree (tracked and new
# files), so nothing lands beside the checkout: $(BUILD_DEB)/projsync_VERSION_ARCH.deb,
# then checked by lintian.
deb:
	@scripts/install-deps --deb
	rm -rf $(BUILD_DEB)
	mkdir -p $(BUILD_DEB)/projsync-$(VERSION)
	git ls-files -z --cached --others --exclude-standard | \
		tar --null -T - --ignore-failed-read -cf - | tar -C $(BUILD_DEB)/projsync-$(VERSION) -xf -
	cd $(BUILD_DEB)/projsync-$(VERSION) && \
		DEB_BUILD_OPTIONS="$(DEB_BUILD_OPTIONS)" dpkg-buildpackage -us -uc -b
	lintian --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs \
		$(BUILD_DEB)/projsync_$(VERSION)_*.deb

# Builds the package, unpacks it into a scratch root, runs the installed binary and checks
# the unit (tests/integration/test_package.py, the parts marked `deb`).
deb-test: deb test-deps
	PROJSYNC_DEB=$$(ls $(CURDIR)/$(BUILD_DEB)/projsync_$(VERSION)_*.deb) $(PYTHON) -m pytest -q \
		tests/integration/test_package.py

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
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_REL) $(BUILD_DEB) $(BUILD_FUZZ)
