#!/usr/bin/env bash
# docs/results.md section 5: the image symmetry gap of every pixel task (the mirror checked on the
# renderer, break 0 and 0.5, 16 visited states each; dm_control's textured scene and the symmetric
# scene) and the speed of pixel training on this CPU (every family x encoder, plain the anchor).
# Run from the repository root after `make setup`:  bash bench/results_pixels.sh   (a few minutes)
set -euo pipefail
for task in cartpole-swingup pendulum-swingup acrobot-swingup ball_in_cup-catch reacher-easy; do
  for scene in textured symmetric; do
    .venv/bin/eqtrade symmetry --env dmc-pixels/$task --break 0,0.5 --states 16 --scene $scene
  done
done
.venv/bin/python bench/bench_pixels.py --updates 3
