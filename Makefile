# Thin wrapper over CMake. `make run` and `make test` install missing
# Debian packages first (scripts/install-deps.sh is idempotent).
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CTEST_ARGS ?=
CMAKE_FLAGS ?=

.PHONY: deps test-deps configure build build-all run test bench clean

deps:
	scripts/install-deps.sh build

test-deps:
	scripts/install-deps.sh test

configure:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target bitmill

build-all: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: deps build
	$(BUILD_DIR)/bitmill serve $(ARGS)

test: test-deps
	scripts/fetch-test-media.sh $(BUILD_DIR)/test-media || true
	$(MAKE) build-all CMAKE_FLAGS="-DBITMILL_WERROR=ON $(CMAKE_FLAGS)"
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench:
	BUILD_DIR=$(BUILD_DIR) bench/run.sh $(if $(QUICK),--quick)

clean:
	rm -rf $(BUILD_DIR)
