# Two commands do everything on a fresh clone (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup clean

# The venv is rebuilt when the declared dependencies change.
$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[keras,test,onnx]"
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
