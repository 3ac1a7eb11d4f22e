"""ctypes bindings for MsQuic's public C API (msquic.h v2.3.5, Linux x86_64).

Only layouts, constants and the loader live here; nothing in this module knows about
asyncio or quicsim's objects. Names of C types, fields and parameter ids keep MsQuic's
spelling so that they can be looked up in msquic.h; enumerations are Python enums.

Layouts are the header's default ones: QUIC_API_ENABLE_PREVIEW_FEATURES is not defined,
so the preview-only connection events (16..18) have no payload struct in the event union.
tests/test_msquic_bindings.py checks every size and offset against gcc's.

Threads: MsQuic calls the callbacks on its own worker threads (and sometimes inline, on
the thread of the API call that caused the event). ctypes releases the GIL around every
foreign call and takes it for every Python callback, so a blocking call such as
RegistrationClose does not deadlock with a callback that waits for the GIL. The caller
must keep each callback object (a CFUNCTYPE instance) alive for as long as MsQuic may
call it, and each send buffer alive until its SEND_COMPLETE.
"""

from __future__ import annotations

# The bindings in three modules (structs, events, the table and loader), named here as one.
from .c_events import *  # noqa: F401,F403
from .c_events import _ConnectionEventUnion, _ListenerEventUnion, _StreamEventUnion  # noqa: F401
from .library import *  # noqa: F401,F403
from .structs import *  # noqa: F401,F403
from .structs import _CredentialCertificate  # noqa: F401
