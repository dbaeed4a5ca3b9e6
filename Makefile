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

# The whole pipeline on the embedded default (rt-polarity + all-MiniLM-L6-v2), CPU-sized:
# data, teacher, a small 2-worker study with pruning, and its report.
quickstart: install
	$(CLI) prepare --run $(RUN) --dataset rt-polarity
	$(CLI) teacher --run $(RUN) --epochs 1 --max-train-examples 4000
	$(CLI) study --run $(RUN) --name $(STUDY) --n-trials 10 --epochs 3 \
	    --max-train-examples 3000 --workers 2 --pruner median \
	    --range layers=1:2 --range hidden=128:192 --range batch_size=64,128 --range lr=1e-3:3e-3
	$(CLI) report --run $(RUN) --name $(STUDY)
	@echo
	@echo "quickstart done: everything is under $(RUN)/"
	@echo "  teacher:   $(RUN)/teacher/manifest.json, diagnostics.json"
	@echo "  study:     $(RUN)/studies.db (study '$(STUDY)')"
	@echo "  report:    $(RUN)/report/$(STUDY)/report.html (and report.md, csv/)"
	@echo "  dashboard: $(CLI) dashboard --run $(RUN)"

test: install
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache *.egg-info
