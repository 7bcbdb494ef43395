# Two commands do everything on a fresh clone (see README): `make demo` and `make test`.
# `make check` is the fast tier (lint, types, the tests not marked slow).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test check lint setup graphviz docs screenshot constraints clean

EXTRAS ?= keras,test,dev,onnx,openvino,litert,pictures,train,latency,notebooks,jax,torch,docs,browser,search
# The TensorFlow wheel: tensorflow-cpu (no CUDA kernels, a smaller download) unless
# `make TENSORFLOW=tensorflow`. pip users get `tensorflow` from the `tensorflow` extra;
# make installs the wheel itself because pip cannot satisfy `tensorflow>=2.21` with tensorflow-cpu.
TENSORFLOW ?= tensorflow-cpu
# Every install takes the versions CI tested (constraints.txt); setup.cfg states lower bounds.
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
# Graphviz's dot draws diagrams; installed with the system's package manager when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The venv is rebuilt when the declared dependencies or their pins change. pip's output goes
# to .venv/install.log, shown only if the install fails.
$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	@echo "installing inception-kit[$(EXTRAS)] and $(TENSORFLOW) into $(VENV) (versions from constraints.txt)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@{ $(PIP) --upgrade pip && $(PIP) $(TENSORFLOW) -e ".[$(EXTRAS)]"; } > $(VENV)/install.log 2>&1 \
	  || { cat $(VENV)/install.log; echo "the install failed; its log: $(VENV)/install.log"; exit 1; }
	@touch $@

setup: $(VENV)/.installed

# Only the diagram tests need dot; CI (make test) installs it rather than skip them.
graphviz:
	@command -v dot >/dev/null || { echo "installing Graphviz (the diagram tests draw with dot)"; \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; } \
	  || { echo "please install Graphviz (https://graphviz.org/download/) and run make again"; exit 1; }; }

# The main job on a shipped spec: validate, cost report, build and export a verified SavedModel.
demo: $(VENV)/.installed
	@$(BIN)/inception-kit report googlenet
	@$(BIN)/inception-kit export googlenet --out build/googlenet --overwrite

# pytest exits 5 when it collects no test; say so instead of failing silently or passing blind.
test: $(VENV)/.installed graphviz
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

# Lint, formatting and types (CI runs these before the whole suite); `ruff format .` fixes the
# formatting.
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The fast tier: lint, types and the tests not marked slow (under a minute).
check: lint graphviz
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

# The documentation site, into build/site/: --strict makes a broken link or a docstring the
# API page cannot render an error. (The variables silence a notice mkdocs plugins print.)
docs: $(VENV)/.installed
	DISABLE_MKDOCS_2_WARNING=true NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# docs/googlenet_report.png, after changing the HTML report (needs Debian's chromium).
screenshot: $(VENV)/.installed
	$(BIN)/python scripts/report_screenshot.py

# Re-pin constraints.txt from the venv (after changing dependencies and seeing `make test` pass).
constraints: $(VENV)/.installed
	$(BIN)/python scripts/pin_constraints.py $(EXTRAS) --also $(TENSORFLOW)

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis .mypy_cache .ruff_cache
