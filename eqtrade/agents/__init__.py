"""DQN, SAC and DrQ-v2 agents whose networks come from any eqtrade.nn family; the replay buffer,
checkpoints and the callbacks around `learn`. Agents know an env only through
`eqtrade.envs.protocol` (spaces, Symmetry, ExactReward, episode state)."""

from ..envs.factory import EnvSpec
from .base import Agent, BaseConfig, TrainingDiverged, resolve_device
from .buffer import ReplayBuffer
from .callbacks import Callback, CheckpointCallback, EvalCallback, MetricsCSV, OnEval, Progress
from .checkpoint import CheckpointError
from .dqn import DQN, DQNConfig
from .drq import DrQConfig, DrQV2
from .sac import SAC, SACConfig

ALGOS = {"sac": SAC, "dqn": DQN, "drqv2": DrQV2}

__all__ = ["ALGOS", "Agent", "BaseConfig", "Callback", "CheckpointCallback", "CheckpointError", "DQN", "DQNConfig",
           "DrQConfig", "DrQV2", "EnvSpec", "EvalCallback", "MetricsCSV", "OnEval", "Progress", "ReplayBuffer", "SAC",
           "SACConfig", "TrainingDiverged", "resolve_device"]
