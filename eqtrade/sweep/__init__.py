"""Studies on Ray Tune: a sweep spec (a strategy config + a grid or a search) -> trials that are
ordinary run directories -> one comparison table. Above `agents` and `backtest`; neither imports it."""

from .spec import SweepSpec, load_spec, trial_name
from .study import run_sweep

__all__ = ["SweepSpec", "load_spec", "trial_name", "run_sweep"]
