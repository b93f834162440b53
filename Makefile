# Two entry points for a fresh machine: `make run` and `make test`. Both install
# what they need (idempotent) and keep the virtual environment in .venv/.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
RUN_DIR ?= runs/quick

.PHONY: run test install dataset browser clean

run: install dataset
	$(BIN)/committee run --preset quick --run-dir $(RUN_DIR)

test: install $(VENV)/.installed-ray dataset browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python benchmarks/render_docs.py --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/site
	$(BIN)/python -m pytest -q -n auto --dist loadfile -m "not serial"
	$(BIN)/python -m pytest -q -m serial

install: $(STAMP)

# torch==2.13.0 is pinned in pyproject.toml; on this kind of machine pip takes the
# CPU wheel that lies on disk instead of a multi-GB CUDA build. The tests need the
# optional Ray backend too (committee[ray]); `make run` does not use it.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

$(VENV)/.installed-ray: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,ray]'
	touch $@

# The real dataset from Debian's package when we can (root + apt); otherwise the
# loader downloads the official files into ~/.cache/committee on first use.
dataset:
	@if [ -f $(DATA) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)); \
	else echo "note: not root; Fashion-MNIST will be downloaded to ~/.cache/committee on first use"; fi

# Headless Chromium for the report's browser test (Debian package `chromium`).
browser:
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || \
		 (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)); \
	else echo "note: chromium not installed; the browser test will be skipped"; fi

clean:
	rm -rf $(VENV) runs .pytest_cache site
