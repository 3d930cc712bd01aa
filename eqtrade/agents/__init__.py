"""DQN and SAC agents whose networks come from any eqtrade.nn family."""

from .buffer import ReplayBuffer
from .common import Agent, EnvSpec, TrainingDiverged, env_symmetry
from .dqn import DQN, DQNConfig
from .sac import SAC, SACConfig

ALGOS = {"sac": SAC, "dqn": DQN}

__all__ = ["ALGOS", "Agent", "DQN", "DQNConfig", "EnvSpec", "ReplayBuffer", "SAC", "SACConfig",
           "TrainingDiverged", "env_symmetry"]
