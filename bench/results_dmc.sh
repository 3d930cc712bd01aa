#!/usr/bin/env bash
# The dm_control comparison in docs/results.md: SAC plain / exact / relaxed on cartpole swingup,
# the exact task (break 0) and a symmetry-broken one (break 0.5: gravity tilted 15°), 3 seeds,
# 12 500 env steps = 100k frames (action repeat 8), final returns under observation noise
# 0 / 0.05 / 0.1, learning curves. About 70 minutes on 2 cores (two runs at a time).
# Run from the repository root after `make setup`:  bash bench/results_dmc.sh
# Interrupted? Run it again: finished runs are reused, interrupted ones resume.
set -euo pipefail
.venv/bin/eqtrade dmc --domains cartpole-swingup --break 0,0.5 --agents plain,exact,relaxed \
  --seeds "${SEEDS:-3}" --steps "${STEPS:-12500}" --obs-noise 0,0.05,0.1 --jobs "${JOBS:-2}" \
  --out "${OUT:-runs/dmc-cartpole}" "$@"
.venv/bin/eqtrade symmetry --env dmc/cartpole-swingup --break 0,0.5,1 --states 64
