#!/usr/bin/env bash
# docs/results.md section 1: SAC plain / exact / relaxed on the bundled 20-stock long/short
# portfolio, 5 seeds each, trained on 2000-2014 with the default strategies
# (strategies/sac-FAMILY.toml), checkpoint chosen on the valid split (2015-2018), then the test
# split (2019-2022) read once by `eqtrade compare`, with observation noise 0 and 0.05, next to
# equal weight, buy & hold and the S&P 500. Runs two trainings at a time (JOBS), one thread each.
# Run from the repository root after `make setup`:  bash bench/results_portfolio.sh
# (about 35 minutes on 2 cores at the default 30 000 steps per run)
set -euo pipefail
STEPS=${STEPS:-30000}
SEEDS=${SEEDS:-"0 1 2 3 4"}
JOBS=${JOBS:-2}
OUT=${OUT:-runs/results}
for seed in $SEEDS; do
  for fam in plain exact relaxed; do
    out=$OUT/sac-$fam-s$seed
    # a finished run is kept; an interrupted one is continued from its checkpoint
    if [ -f "$out/checkpoint.pt" ]; then
      echo "--out $out --resume --steps $STEPS"
    else
      echo "--config strategies/sac-$fam.toml --steps $STEPS --seed $seed --out $out"
    fi
  done
done | xargs -P "$JOBS" -L 1 env OMP_NUM_THREADS=1 .venv/bin/eqtrade train --no-progress
.venv/bin/eqtrade compare $OUT/sac-*-s* --split test --obs-noise 0,0.05 --out backtests/results-test
