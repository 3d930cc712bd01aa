"""DQN and SAC agents whose networks come from any eqtrade.nn family; DrQ-v2 for pixel tasks."""

from .buffer import ReplayBuffer
from .common import Agent, EnvSpec, TrainingDiverged, env_symmetry
from .dqn import DQN, DQNConfig
from .drq import DrQConfig, DrQV2
from .sac import SAC, SACConfig

ALGOS = {"sac": SAC, "dqn": DQN, "drqv2": DrQV2}

__all__ = ["ALGOS", "Agent", "DQN", "DQNConfig", "DrQConfig", "DrQV2", "EnvSpec", "ReplayBuffer", "SAC", "SACConfig",
           "TrainingDiverged", "env_symmetry"]
