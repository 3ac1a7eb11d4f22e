"""The sans-I/O core: MsQuic's stream and connection rules over aioquic's QuicConnection."""

from .connection import ConnectionCore, StatusError
from .stream import StreamCore

__all__ = ["ConnectionCore", "StreamCore", "StatusError"]
