"""Every exception quicsim raises on purpose is a QuicsimError, importable from quicsim and
from where it was raised before; each keeps its builtin base."""

from __future__ import annotations

import importlib

import pytest

import quicsim
from quicsim import errors

#: (name, the module it was raised from before, the builtin base it keeps)
HOMES = [
    ("UsageError", "quicsim.loader", Exception),
    ("SchedulerError", "quicsim.fuzz.dask_pool", Exception),
    ("NetworkError", "quicsim.network", ValueError),
    ("BadTraceLine", "quicsim.trace", ValueError),
    ("BadHistory", "quicsim.check", ValueError),
    ("VirtualTimeExceeded", "quicsim.transport.virtual_loop", Exception),
    ("VirtualClockStopped", "quicsim.transport.virtual_loop", Exception),
    ("BackendError", "quicsim.backends", Exception),
    ("MsQuicError", "quicsim.backends.msquic.structs", RuntimeError),
    ("LibraryLoadError", "quicsim.backends.msquic.library", OSError),
]


def test_the_list_is_every_class_of_the_module() -> None:
    classes = {name for name in errors.__all__ if name != "QuicsimError"}
    assert classes == {name for name, _, _ in HOMES}


@pytest.mark.parametrize("name, old_home, builtin", HOMES)
def test_each_is_a_quicsim_error_under_every_name(name: str, old_home: str, builtin: type) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, quicsim.QuicsimError)
    assert issubclass(cls, builtin)
    assert getattr(quicsim, name) is cls
    assert getattr(importlib.import_module(old_home), name) is cls


def test_one_except_catches_what_quicsim_raises(tmp_path) -> None:
    from quicsim.loader import load_scenarios
    from quicsim.network import NetworkProfile

    with pytest.raises(quicsim.QuicsimError, match="loss"):
        NetworkProfile.from_dict({"loss": 2})
    with pytest.raises(quicsim.QuicsimError, match="no such"):
        load_scenarios([str(tmp_path / "missing.py")])
    from quicsim.backends.msquic.library import Library

    with pytest.raises(quicsim.QuicsimError, match="cannot load"):
        Library(str(tmp_path / "libmsquic.so"))


def test_the_cores_own_and_the_plugins_are_quicsim_errors_too() -> None:
    """StatusError (a call refused with MsQuic's status), StateError (a broken core rule),
    the plugin's ScenarioFailed, a peer not installed and an input that is no MsQuic log
    live where they are raised, under the same base."""
    from quicsim.core.state import StateError
    from quicsim.msquic_log.parse import NotMsQuicLog
    from quicsim.peers import PeerNotInstalled
    from quicsim.pytest_plugin import ScenarioFailed

    assert issubclass(PeerNotInstalled, quicsim.QuicsimError)
    assert issubclass(NotMsQuicLog, quicsim.QuicsimError) and issubclass(NotMsQuicLog, ValueError)

    assert issubclass(quicsim.StatusError, quicsim.QuicsimError)
    assert issubclass(StateError, quicsim.QuicsimError) and issubclass(StateError, RuntimeError)
    assert issubclass(ScenarioFailed, quicsim.QuicsimError)
