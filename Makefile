# GLMTrain — `make quickstart` runs the main job on the bundled model and data; `make test` runs the tests.
SHELL := /bin/bash
SWIFT ?= swift
VENV ?= .venv
# OpenBLAS reads OPENBLAS_CORETYPE when it loads: use its AVX-512 kernels on CPUs that have AVX-512F
# unless the caller chose a core type (glm-train does the same for itself by re-executing once).
AVX512 := $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo yes)
ifeq ($(AVX512),yes)
export OPENBLAS_CORETYPE ?= SkylakeX
endif

.PHONY: deps build test quickstart bench-ops venv fixtures clean

# System libraries (OpenBLAS, HDF5, pkg-config), installed only when missing.
deps:
	@if ! pkg-config --exists openblas hdf5 2>/dev/null; then \
		echo "installing libopenblas-dev libhdf5-dev pkg-config"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libopenblas-dev libhdf5-dev pkg-config; \
	fi

build: deps
	$(SWIFT) build -c release

# The tests are XCTest; the closing line restates XCTest's summary as "N passed, N failed, N skipped".
test: deps
	$(SWIFT) build -c release --build-tests
	set -o pipefail; $(SWIFT) test -c release --skip-build --disable-swift-testing 2>&1 | tee .build/test.log
	@line=$$(grep -E "Executed [0-9]+ tests?" .build/test.log | tail -1); \
		total=$$(echo "$$line" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/'); \
		skipped=$$(echo "$$line" | grep -oE '[0-9]+ tests? skipped' | grep -oE '^[0-9]+' || echo 0); \
		failed=$$(echo "$$line" | sed -E 's/.* ([0-9]+) failures?.*/\1/'); \
		echo "$$((total - skipped - failed)) passed, $$failed failed, $$skipped skipped"

quickstart: build
	.build/release/glm-train doctor

# Python with torch/transformers/peft, for fixture scripts and benchmark comparisons only.
venv:
	@[ -x $(VENV)/bin/python ] || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q torch transformers peft safetensors

fixtures: venv
	$(VENV)/bin/python Scripts/make_core_fixtures.py
	$(VENV)/bin/python Scripts/make_model_fixtures.py
	$(VENV)/bin/python Scripts/make_tokenizer_fixtures.py
	$(VENV)/bin/python Scripts/make_optimizer_fixtures.py

bench-ops: build venv
	.build/release/glm-train bench ops --python $(VENV)/bin/python

clean:
	rm -rf .build
