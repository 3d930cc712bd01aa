#!/usr/bin/env bash
# docs/results.md section 1d: the asset axis. SAC (plain reflection family, the defaults of
# strategies/sac-plain.toml) on the bundled 20-stock long/short portfolio with three networks on the
# asset axis, 5 seeds each: flat (one MLP over all assets, bench/configs/sac-flat.toml;
# studies/portfolio-flat.toml), permutation-exact and permutation-relaxed (one head shared by every
# asset with the market mean as context, the latter plus per-asset embeddings regularised toward
# sharing; studies/portfolio-assets.toml). Trained on 2000-2014, best.pt chosen on valid
# (2015-2018), the test split (2019-2022) read once by `eqtrade compare` with the baselines; then the
# per-asset agents zero-shot on the factor ETFs (test split), and the reordering test
# (bench/bench_reorder.py) on every run.
# Run from the repository root after `make setup`:  bash bench/results_assets.sh
# (about 35 minutes on 2 cores; interrupted? the same command continues it)
set -euo pipefail
OUT=${OUT:-runs/sweeps}
for study in portfolio-flat portfolio-assets; do
  if [ -f "$OUT/$study/sweep.json" ]; then RESUME=--resume; else RESUME=; fi
  .venv/bin/eqtrade sweep studies/$study.toml --cpus "${JOBS:-2}" --out "$OUT/$study" $RESUME --no-progress
done
.venv/bin/eqtrade compare "$OUT"/portfolio-flat/runs/* "$OUT"/portfolio-assets/runs/* --split test \
  --out backtests/assets-test --force
.venv/bin/eqtrade compare "$OUT"/portfolio-assets/runs/* --split test --data factor-etfs --out backtests/assets-etfs --force
OMP_NUM_THREADS=1 .venv/bin/python bench/bench_reorder.py "$OUT"/portfolio-flat/runs/* "$OUT"/portfolio-assets/runs/* \
  --split test --orders 5
