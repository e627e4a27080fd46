# The two commands of the README. Both create .venv/ on first use.
#   make demo   build every lab, grade the bundled sample submissions, print a grade table
#   make test   the whole test suite
#   make site   the static self-study website of the course, in out/site/
#   make lab    JupyterLab on labs/ as students have it: no nbgrader instructor tools
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-grading build site lab clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "MDP Labs needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mdplab demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15

build: $(STAMP)
	$(BIN)/mdplab build

# Sphinx + myst-nb on the committed worked solutions (nothing is executed); MathJax comes
# from npm once, into out/cache/. Open out/site/index.html, or serve the folder.
site: $(STAMP)
	$(BIN)/mdplab site

# JupyterLab for the labs, with jupyter/student/ on JUPYTER_CONFIG_PATH: it turns off
# nbgrader's instructor tools (the Nbgrader menu, Formgrader, Course List, Create
# Assignment, Assignment List and their server pages) and keeps Validate. More options for
# jupyter lab in LAB_ARGS, e.g. make lab LAB_ARGS="--no-browser --port=8899".
LAB_ARGS ?=
lab: $(STAMP)
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter/student$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(BIN)/jupyter lab --ServerApp.root_dir=labs $(LAB_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_solvers.py
	$(BIN)/python benchmarks/bench_race.py
	$(BIN)/python benchmarks/bench_autoscaler.py
	$(BIN)/python benchmarks/bench_kernel_client.py
	$(BIN)/python benchmarks/bench_warm_kernel.py
	$(BIN)/python benchmarks/bench_explorers.py

# About 15 minutes on 2 cores; run it on an otherwise idle machine.
bench-grading: $(STAMP)
	$(BIN)/python benchmarks/bench_grading.py --lab lab02 --count 40

clean:
	rm -rf $(VENV) out
