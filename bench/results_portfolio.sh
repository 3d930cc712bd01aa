#!/usr/bin/env bash
# docs/results.md sections 1b and 1c: SAC plain / exact / relaxed on the bundled 20-stock long/short
# portfolio, 5 seeds each, trained on 2000-2014 with the default strategies
# (strategies/sac-FAMILY.toml), checkpoint chosen on the valid split (2015-2018), then the test
# split (2019-2022) read once, with observation noise 0 and 0.05, next to equal weight, buy & hold
# and the S&P 500 (1b); then the same agents zero-shot on the factor ETFs (1c).
# One sweep (studies/portfolio-families.toml) on a local Ray instance, JOBS trials at a time.
# Run from the repository root after `make setup`:  bash bench/results_portfolio.sh
# (about 30 minutes on 2 cores; interrupted? the same command continues it)
set -euo pipefail
OUT=${OUT:-runs/sweeps/portfolio-families}
if [ -f "$OUT/sweep.json" ]; then RESUME=--resume; else RESUME=; fi
.venv/bin/eqtrade sweep studies/portfolio-families.toml --cpus "${JOBS:-2}" --out "$OUT" $RESUME --no-progress
.venv/bin/eqtrade compare "$OUT"/runs/* --split test --data factor-etfs --out backtests/results-etfs --force
