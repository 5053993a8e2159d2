# Everything MidStream needs installs from this file and pyproject.toml.
#   make demo   set up, then open the dashboard on the built-in demo (offline, no key)
#   make test   set up, then run the whole test suite
#   make bench  set up, then run the benchmarks in bench/ (by hand, not part of the tests)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup test-deps demo test bench snapshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# Compile the numba kernels once now (about 15 s) so the first dashboard shows numbers at once.
	$(BIN)/python -c "from midstream_tui.analysis import kernels, kernels_temporal; kernels.warm_up(); kernels_temporal.warm_up()"
	touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium for the browser-publisher test (headless, fake camera and microphone).
# Best effort: without root or apt the test is skipped and says why.
test-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "make: chromium not installed: the browser test will be skipped"; }

demo: setup
	$(BIN)/midstream

test: setup test-deps
	$(BIN)/python -m pytest

snapshots: setup
	$(BIN)/python -m pytest tests/test_snapshots.py --snapshot-update

bench: setup
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/bench_temporal.py
	$(BIN)/python bench/bench_motifs.py
	$(BIN)/python bench/bench_lyapunov.py
	$(BIN)/python bench/bench_classify.py
	$(BIN)/python bench/bench_analysis_tick.py
	$(BIN)/python bench/bench_rules.py
	$(BIN)/python bench/bench_hub.py
	$(BIN)/python bench/bench_dashboard.py
	$(BIN)/python bench/bench_media.py
	$(BIN)/python bench/bench_webrtc.py
	$(BIN)/python bench/bench_speech.py
	$(BIN)/python bench/bench_soak.py
	$(BIN)/python bench/bench_meta.py
	$(BIN)/python bench/bench_meta_scale.py
	$(BIN)/python bench/bench_stall.py
	$(BIN)/python bench/bench_audit.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
