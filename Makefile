# Two entry points for a fresh machine with only Python: `make quickstart` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/distill-study
# The CPU build of torch is installed first: a bare `torch` requirement would pull a multi-GB
# CUDA build. GPU users: `make TORCH_SPEC="torch==2.13.0" TORCH_INDEX=<your CUDA wheel index>`,
# or install torch in the venv yourself before `make` (any version the project allows).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
RUN ?= runs/quickstart
STUDY ?= quickstart

.PHONY: install quickstart test lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The whole pipeline on the embedded default (rt-polarity + all-MiniLM-L6-v2), CPU-sized.
quickstart: install
	$(CLI) prepare --run $(RUN) --dataset rt-polarity
	$(CLI) teacher --run $(RUN) --epochs 1 --max-train-examples 4000
	@echo
	@echo "quickstart done: everything is under $(RUN)/"
	@echo "  teacher:  $(RUN)/teacher/manifest.json, diagnostics.json"

test: install
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache *.egg-info
