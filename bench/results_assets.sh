#!/usr/bin/env bash
# docs/results.md section 1d: the asset axis. SAC (plain reflection family, the defaults of
# strategies/sac-plain.toml) on the bundled 20-stock long/short portfolio with three networks on the
# asset axis, 5 seeds each: flat (one MLP over all assets, bench/configs/sac-flat.toml),
# permutation-exact (one head shared by every asset, with the market mean as context) and
# permutation-relaxed (the same plus per-asset embeddings regularised toward sharing). Trained on
# 2000-2014, best.pt chosen on valid (2015-2018), the test split (2019-2022) read once by
# `eqtrade compare` with the baselines; then the per-asset agents zero-shot on the factor ETFs
# (test split), and the reordering test (bench/bench_reorder.py) on every run.
# Run from the repository root after `make setup`:  bash bench/results_assets.sh
# (about 35 minutes on 2 cores at the default 30 000 steps per run)
set -euo pipefail
STEPS=${STEPS:-30000}
SEEDS=${SEEDS:-"0 1 2 3 4"}
JOBS=${JOBS:-2}
OUT=${OUT:-runs/assets}
for seed in $SEEDS; do
  for fam in flat exact relaxed; do
    out=$OUT/$fam-s$seed
    if [ -f "$out/checkpoint.pt" ]; then  # a finished run is kept; an interrupted one continues
      echo "--out $out --resume --steps $STEPS"
    elif [ "$fam" = flat ]; then
      echo "--config bench/configs/sac-flat.toml --steps $STEPS --seed $seed --out $out"
    else
      echo "--config strategies/sac-plain.toml --assets $fam --context mean --steps $STEPS --seed $seed --out $out"
    fi
  done
done | xargs -P "$JOBS" -L 1 env OMP_NUM_THREADS=1 .venv/bin/eqtrade train --no-progress
.venv/bin/eqtrade compare $OUT/*-s* --split test --out backtests/assets-test --force
.venv/bin/eqtrade compare $OUT/exact-s* $OUT/relaxed-s* --split test --data factor-etfs --out backtests/assets-etfs --force
OMP_NUM_THREADS=1 .venv/bin/python bench/bench_reorder.py $OUT/*-s* --split test --orders 5
