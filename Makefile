# Two commands do everything on a fresh clone (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup clean

EXTRAS ?= keras,test,onnx,pictures,train,notebooks,jax,torch
# Graphviz's dot draws diagrams; installed with the system's package manager when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The venv is rebuilt when the declared dependencies change.
$(VENV)/.installed: setup.cfg pyproject.toml
	command -v dot >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq graphviz; } \
	  || { echo "please install Graphviz (https://graphviz.org/download/) and run make again"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed

# The main job on a shipped spec: validate, cost report, build and export a verified SavedModel.
demo: $(VENV)/.installed
	$(BIN)/inception-kit report specs/googlenet.yaml
	$(BIN)/inception-kit export specs/googlenet.yaml --out build/googlenet --overwrite

# pytest exits 5 when it collects no test; say so instead of failing silently or passing blind.
test: $(VENV)/.installed
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
