"""The network between client and server: a pure seeded impairment model and its live controls."""

from .controls import Network
from ..errors import NetworkError
from .impairment import DIRECTIONS, Blackhole, Decision, LinkModel, LinkParams, NetworkProfile

__all__ = ["DIRECTIONS", "Blackhole", "Decision", "LinkModel", "LinkParams", "Network",
           "NetworkError", "NetworkProfile"]
