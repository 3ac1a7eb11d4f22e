"""ctypes bindings for MsQuic's public C API (msquic.h v2.3.5, Linux x86_64), as one
namespace: structs.py (scalar types, constants, addresses, configuration structs),
c_events.py (the event unions), library.py (the API table and the loader). What every
layout follows, and the threading rules, are in structs.py's docstring.
"""

from __future__ import annotations

# The bindings in three modules (structs, events, the table and loader), named here as one.
from .c_events import *  # noqa: F401,F403
from .c_events import _ConnectionEventUnion, _ListenerEventUnion, _StreamEventUnion  # noqa: F401
from .library import *  # noqa: F401,F403
from .structs import *  # noqa: F401,F403
from .structs import _CredentialCertificate  # noqa: F401
