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
# oneDNN's OpenMP threads (bf16 products) sleep between products instead of spinning (glm-train sets it itself too).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: deps build test quickstart quickstart-moe grpo dpo pretrain-tiny pretrain-tiny-moe bench-ops venv fixtures check-llama-cpp measure-cpu-kind clean fuzz-build fuzz fuzz-smoke fuzz-hdf5 fuzz-seeds

# System libraries (OpenBLAS, HDF5, pkg-config; Open MPI for the data-parallel tests), installed only when missing.
# glm-train builds without Open MPI (it loads libmpi at run time, only under mpirun).
deps:
	@if ! pkg-config --exists openblas hdf5 2>/dev/null || [ ! -f /usr/include/oneapi/dnnl/dnnl.h ]; then \
		echo "installing libopenblas-dev libhdf5-dev libdnnl-dev pkg-config"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libopenblas-dev libhdf5-dev libdnnl-dev pkg-config; \
	fi
	@if ! command -v mpirun >/dev/null || ! pkg-config --exists ompi 2>/dev/null; then \
		echo "installing libopenmpi-dev openmpi-bin"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libopenmpi-dev openmpi-bin; \
	fi

build: deps
	$(SWIFT) build -c release

# The tests are XCTest, then the fuzz smoke run; the closing line restates XCTest's summary as "N passed, N failed, N skipped".
test: deps
	Scripts/check_layers.sh
	$(SWIFT) build -c release --build-tests
	set -o pipefail; $(SWIFT) test -c release --skip-build --disable-swift-testing 2>&1 | tee .build/test.log
	$(MAKE) --no-print-directory fuzz-smoke
	@line=$$(grep -E "Executed [0-9]+ tests?" .build/test.log | tail -1); \
		total=$$(echo "$$line" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/'); \
		skipped=$$(echo "$$line" | grep -oE '[0-9]+ tests? skipped' | grep -oE '^[0-9]+' || echo 0); \
		failed=$$(echo "$$line" | sed -E 's/.* ([0-9]+) failures?.*/\1/'); \
		echo "$$((total - skipped - failed)) passed, $$failed failed, $$skipped skipped"

# Coverage-guided fuzzing of every file parser (Tests/Fuzz, README there; libFuzzer and AddressSanitizer come with
# the Swift toolchain). `make fuzz` runs each target FUZZ_SECONDS, two at a time; `make fuzz-smoke` (the end of
# `make test`) replays Tests/Fuzz/Regressions and runs each target FUZZ_SMOKE_SECONDS. A crash, hang (10 s) or an
# allocation above 2 GB fails the rule and prints the input that did it.
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_SCRATCH ?= /tmp/build-fuzz
fuzz-build: deps
	set -o pipefail; $(SWIFT) build -c release --scratch-path $(FUZZ_SCRATCH) --package-path Tests/Fuzz \
		-Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xcc -fsanitize=fuzzer-no-link,address 2>&1 \
		| grep -v "Cannot export local symbol"

fuzz: fuzz-build
	Tests/Fuzz/run.sh $(FUZZ_SCRATCH)/release $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	Tests/Fuzz/run.sh $(FUZZ_SCRATCH)/release $(FUZZ_SMOKE_SECONDS)

# The checkpoint target with libhdf5's metadata checksums repaired after each mutation: finds faults of libhdf5
# itself (Tests/Fuzz/Known), so it is not part of fuzz or fuzz-smoke.
fuzz-hdf5: fuzz-build
	GLMFUZZ_HDF5_REPAIR=1 Tests/Fuzz/run.sh $(FUZZ_SCRATCH)/release $(FUZZ_SECONDS) checkpoint

# Rewrites Tests/Fuzz/Seeds from the repository's fixtures.
fuzz-seeds: fuzz-build
	python3 Tests/Fuzz/make_seeds.py
	SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 $(FUZZ_SCRATCH)/release/fuzz-make-seeds

# The main job: LoRA SFT of the bundled tiny GLM on Data/quickstart (exact match before/after), then the exports.
QS := Checkpoints/runs/quickstart
quickstart: build
	.build/release/glm-train run Recipes/quickstart.yaml --overwrite
	.build/release/glm-train export --run $(QS) --format gguf-lora --output $(QS)/adapter.gguf
	.build/release/glm-train export --run $(QS) --format vllm --output $(QS)/adapter-vllm
	@echo ""
	@echo "Exact-match accuracy on Data/quickstart/task.jsonl (step 0 = base model):"
	@grep '"eval/task/accuracy"' $(QS)/metrics.jsonl | while read -r l; do \
		v() { echo "$$l" | grep -oE "\"$$1\":[0-9.e-]+" | cut -d: -f2; }; \
		printf '  step %-4s all %-8s routing %-8s facts %s\n' "$$(v step)" "$$(v eval/task/accuracy)" \
			"$$(v eval/task/accuracy_routing)" "$$(v eval/task/accuracy_fact)"; done
	@echo ""
	@echo "PEFT adapter:  $(QS)/adapter        (score or chat with it here:"
	@echo "               .build/release/glm-train generate --model Checkpoints/glm-tiny --adapter $(QS)/adapter --chat --prompt 'Who runs the Leeds office?')"
	@echo "vLLM/SGLang:   vllm serve Checkpoints/glm-tiny --enable-lora --lora-modules quickstart=$(QS)/adapter-vllm --max-lora-rank 16"
	@echo "               (SGLang: python -m sglang.launch_server --model-path Checkpoints/glm-tiny --lora-paths quickstart=$(QS)/adapter)"
	@echo "llama.cpp:     python convert_hf_to_gguf.py Checkpoints/glm-tiny --outfile glm-tiny.gguf   # base model, once (the tiny"
	@echo "               model's own vocabulary needs tokenizer.ggml.pre=chatglm-bpe, see README; make check-llama-cpp does it)"
	@echo "               llama-server -m glm-tiny.gguf --lora $(QS)/adapter.gguf"
	@echo "Plots:         $(QS)/plots/*.svg"

# GRPO after the quickstart's SFT (its adapter merged into the base), rollout and trainer as two processes.
grpo: build
	@[ -d $(QS)/adapter ] || $(MAKE) quickstart
	.build/release/glm-train export --run $(QS) --format merged --output $(QS)/merged
	.build/release/glm-train run Recipes/grpo-async.yaml --overwrite

# DPO with LoRA from the quickstart's SFT adapter (made first when missing): the help desk's new security team.
DPO := Checkpoints/runs/dpo-lora
dpo: build
	@[ -f $(QS)/adapter/adapter_model.safetensors ] || $(MAKE) quickstart
	.build/release/glm-train run Recipes/dpo-lora.yaml --overwrite
	@echo ""
	@echo "Held-out metrics (step 0 = the SFT adapter):"
	@grep '"eval/security/accuracy"' $(DPO)/metrics.jsonl | while read -r l; do \
		v() { echo "$$l" | grep -oE "\"$$1\":[0-9.e-]+" | cut -d: -f2; }; \
		printf '  step %-4s security tickets %-7s quickstart task %-7s pairs: accuracy %-6s margin %-8s logp chosen %s\n' "$$(v step)" \
			"$$(v eval/security/accuracy)" "$$(v eval/task/accuracy)" "$$(v eval/pref/rewards/accuracies)" \
			"$$(v eval/pref/rewards/margins)" "$$(v eval/pref/logps/chosen)"; done
	@echo "Adapter: $(DPO)/adapter (export it like the quickstart's: glm-train export --run $(DPO) --format peft|vllm|merged|gguf-lora --output OUT)"

# Pretrains the bundled model again (the result is committed in Checkpoints/glm-tiny).
pretrain-tiny: build
	.build/release/glm-train run Recipes/pretrain-tiny.yaml --overwrite

# Pretrains the bundled tiny MoE again and writes it to Checkpoints/glm-tiny-moe (the result is committed): the run's
# model, the bundled tokenizer, and GLM-4.5's chat template as chat_template.jinja.
MOE := Checkpoints/glm-tiny-moe
pretrain-tiny-moe: build
	.build/release/glm-train run Recipes/pretrain-tiny-moe.yaml --overwrite
	mkdir -p $(MOE)
	cp Checkpoints/runs/pretrain-tiny-moe/model/config.json Checkpoints/runs/pretrain-tiny-moe/model/generation_config.json \
		Checkpoints/runs/pretrain-tiny-moe/model/model.safetensors Checkpoints/glm-tiny/tokenizer.json $(MOE)/
	python3 -c "import json; c = json.load(open('Checkpoints/glm-tiny/tokenizer_config.json')); c.pop('chat_template', None); \
		json.dump(c, open('$(MOE)/tokenizer_config.json', 'w'), ensure_ascii=False, indent=2)"
	cp Tests/GLMIOTests/Fixtures/chat_templates/glm-4.5.jinja $(MOE)/chat_template.jinja

# The quickstart's SFT on the tiny MoE (GLM-4.5's template with thinking off, LoRA on every linear incl. experts).
QSM := Checkpoints/runs/quickstart-moe
quickstart-moe: build
	.build/release/glm-train run Recipes/quickstart.yaml --overwrite --set model.path=$(MOE) \
		--set data.chat_template=glm-4.5-nothink --set output_dir=$(QSM)
	@echo ""
	@echo "Exact-match accuracy on Data/quickstart/task.jsonl (step 0 = base model):"
	@grep '"eval/task/accuracy"' $(QSM)/metrics.jsonl | while read -r l; do \
		v() { echo "$$l" | grep -oE "\"$$1\":[0-9.e-]+" | cut -d: -f2; }; \
		printf '  step %-4s all %-8s routing %-8s facts %s\n' "$$(v step)" "$$(v eval/task/accuracy)" \
			"$$(v eval/task/accuracy_routing)" "$$(v eval/task/accuracy_fact)"; done
	@echo "Adapter: $(QSM)/adapter (glm-train generate --model $(MOE) --adapter $(QSM)/adapter --chat --chat-template glm-4.5-nothink --prompt 'Who runs the Leeds office?')"

# Python with torch/transformers/peft/trl, for fixture scripts and benchmark comparisons only.
venv:
	@[ -x $(VENV)/bin/python ] || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q torch transformers peft safetensors trl

fixtures: venv
	$(VENV)/bin/python Scripts/make_core_fixtures.py
	$(VENV)/bin/python Scripts/make_model_fixtures.py
	$(VENV)/bin/python Scripts/make_moe_fixtures.py
	$(VENV)/bin/python Scripts/make_mtp_fixtures.py
	$(VENV)/bin/python Scripts/make_tokenizer_fixtures.py
	$(VENV)/bin/python Scripts/make_glm45_template_fixtures.py
	$(VENV)/bin/python Scripts/make_optimizer_fixtures.py
	$(VENV)/bin/pip install -q trl
	$(VENV)/bin/python Scripts/make_dpo_fixtures.py
	$(VENV)/bin/python Scripts/make_bf16_fixtures.py

bench-ops: build venv
	.build/release/glm-train bench ops --python $(VENV)/bin/python

# llama.cpp's own runtime (llama-cpp-python) on GLMTrain's exports: base, gguf-lora and merged, GLM and GLM-4
# (log-probabilities vs glm-train score), then llama.cpp's prefill/decode speed on the bench model. The first
# use builds llama-cpp-python from source (~20 minutes on 2 cores).
check-llama-cpp: build venv
	@$(VENV)/bin/python -c "import llama_cpp" 2>/dev/null || nice -n 19 $(VENV)/bin/pip install llama-cpp-python
	$(VENV)/bin/python Scripts/check_llama_cpp.py
	$(VENV)/bin/python Scripts/check_llama_cpp.py --bench
	$(VENV)/bin/python Scripts/check_llama_cpp_moe.py

# Every side-by-side figure of the README's "Per CPU kind" table on this machine (about 11 minutes on Zen 4), logs and a
# summary in bench-cpu-kind-DATE/; installs llama-cpp-python first as check-llama-cpp does.
measure-cpu-kind: build venv
	@$(VENV)/bin/python -c "import llama_cpp" 2>/dev/null || nice -n 19 $(VENV)/bin/pip install llama-cpp-python
	Scripts/measure_cpu_kind.sh

clean:
	rm -rf .build
