"""eqtrade: approximately equivariant reinforcement learning for trading."""

__version__ = "0.1.0"
