# Two commands: `make demo` and `make test`. Each sets up .venv from nothing on first use
# and is a no-op set-up afterwards (the stamp file tracks pyproject.toml and constraints.txt).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.eqtrade-installed
# Extra pip arguments, e.g. PIP_ARGS="--extra-index-url URL" for a CPU torch index elsewhere.
PIP_ARGS ?=

.PHONY: setup demo test test-all docs bench-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q $(PIP_ARGS) -c constraints.txt "torch==2.13.0" "numpy<2"
	# escnn without its declared deps: py3nj needs gfortran and is optional (see constraints.txt)
	$(PIP) install -q $(PIP_ARGS) -c constraints.txt --no-deps escnn
	$(PIP) install -q $(PIP_ARGS) -c constraints.txt -e ".[test]"
	MUJOCO_GL=disable $(PY) -W ignore::UserWarning -c "import escnn, torch, numpy, pandas, pyarrow, dm_control.suite; print('eqtrade env ok: torch', torch.__version__, 'numpy', numpy.__version__)"
	# pixel tasks: check once that MuJoCo renders headless (EGL, else OSMesa); state tasks do not need it
	$(PY) -W ignore -c "from eqtrade.envs.dmc_pixels import make_pixels; e = make_pixels('dmc-pixels/cartpole-swingup'); print('rendering ok: MUJOCO_GL=' + e.unwrapped.backend)" \
	  || echo "WARNING: MuJoCo cannot render here; dmc-pixels tasks are unavailable (see the error above)"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/eqtrade data list
	$(VENV)/bin/eqtrade symmetry --data sp500-20 --split train --boot 20
	# the demo's own run: trained afresh each time (2-3 minutes on 2 cores); backtested with best.pt
	rm -rf runs/demo-relaxed backtests/demo-relaxed
	$(VENV)/bin/eqtrade train --agent relaxed --steps 8000 --out runs/demo-relaxed
	$(VENV)/bin/eqtrade backtest runs/demo-relaxed --split test --out backtests/demo-relaxed
	@echo "demo done: tearsheet at backtests/demo-relaxed/tearsheet.html, run at runs/demo-relaxed/"

# two pytest-xdist workers (one per core); tests/conftest.py keeps Ray's tests and the files with
# shared trained fixtures on one worker each (--dist loadgroup)
XDIST := -n 2 --dist loadgroup

test: $(STAMP)
	$(PY) -m pytest -q $(XDIST)

test-all: $(STAMP)
	$(PY) -m pytest -q $(XDIST) -m ""

# the documentation site (MkDocs + mkdocs-material) into site/; --strict: a broken link or anchor fails
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

# anchors for bench/: gym-anytrading and Stable-Baselines3 (pinned in constraints.txt) and the
# FinRL 0.3.7 wheel,
# portfolio environment module bench/bench_envs.py loads on its own (no FinRL dependencies)
bench-deps: $(STAMP)
	$(PIP) install -q $(PIP_ARGS) -c constraints.txt gym-anytrading stable-baselines3
	$(PIP) download -q $(PIP_ARGS) --no-deps finrl==0.3.7 -d bench/.cache

clean:
	rm -rf $(VENV) .pytest_cache site
