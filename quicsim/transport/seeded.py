"""Every byte of a memory-transport run drawn from its seed.

aioquic draws connection IDs, stateless reset tokens, path challenges and the TLS
randoms from ``os.urandom``, its key shares from ``cryptography``'s key generation, and
serves streams in an order taken from a ``set`` of stream objects (hashed by identity,
so by memory address). :func:`seeded` makes all of these a function of the seed for the
thread it is entered on, and only there: it replaces, while active,

- ``os`` in ``aioquic.quic.connection``, ``aioquic.tls``, ``aioquic.quic.packet``,
  ``aioquic.quic.retry`` and ``aioquic.asyncio.server`` with a view of ``os`` whose
  ``urandom`` draws from the seed (connection IDs, reset tokens, TLS client and server
  randoms, session tickets, PATH_CHALLENGE data, retry nonces);
- ``x25519``, ``x448`` and ``ec`` in ``aioquic.tls`` with views whose key generation
  derives the private key from the seed (the x25519 / x448 / secp256r1-384-521 key shares);
- the state of the ``random`` module (scenario code that calls ``random.random()``).

Other threads (a UDP run, the caller's own code) keep the real functions: the views
check which thread asks. A connection made on a seeded thread (:func:`serve_streams_by_id`,
called by the driver) has streams that hash by stream id, so aioquic's stream service
order repeats; every other stream keeps the identity hash, and no aioquic class changes.
The server's CertificateVerify is deterministic with the project's Ed25519 key; an
ECDSA or RSA-PSS key would still sign with OpenSSL's own randomness.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
from typing import Any, Iterator

from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519

from ..core import aioquic_adapter as aq

_state = threading.local()  # .rng: the seeded generator of this thread, when active
_install_lock = threading.Lock()
_active = 0
_saved: list[tuple[Any, str, Any]] = []

#: (module, global name) pairs that see the seeded views while any seeded run is active
_OS_USERS = ("aioquic.quic.connection", "aioquic.tls", "aioquic.quic.packet", "aioquic.quic.retry",
             "aioquic.asyncio.server")


def _rng() -> random.Random | None:
    return getattr(_state, "rng", None)


class _View:
    """A module seen through a few replaced functions; everything else is the module's."""

    def __init__(self, module: Any, **replaced: Any) -> None:
        self._module = module
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def _urandom(n: int) -> bytes:
    rng = _rng()
    return os.urandom(n) if rng is None else rng.randbytes(n)


class _X25519PrivateKey:
    @staticmethod
    def generate() -> x25519.X25519PrivateKey:
        rng = _rng()
        if rng is None:
            return x25519.X25519PrivateKey.generate()
        return x25519.X25519PrivateKey.from_private_bytes(rng.randbytes(32))


class _X448PrivateKey:
    @staticmethod
    def generate() -> x448.X448PrivateKey:
        rng = _rng()
        if rng is None:
            return x448.X448PrivateKey.generate()
        return x448.X448PrivateKey.from_private_bytes(rng.randbytes(56))


def _ec_generate_private_key(curve: ec.EllipticCurve, backend: Any = None) -> ec.EllipticCurvePrivateKey:
    rng = _rng()
    if rng is None:
        return ec.generate_private_key(curve)
    # Below 2**(bits-1): inside [1, n) for every NIST prime curve, whose order n exceeds it.
    return ec.derive_private_key(rng.randrange(1, 1 << (curve.key_size - 1)), curve)


_OS_VIEW = _View(os, urandom=_urandom)
_TLS_VIEWS = {
    "x25519": _View(x25519, X25519PrivateKey=_View(x25519.X25519PrivateKey, generate=_X25519PrivateKey.generate)),
    "x448": _View(x448, X448PrivateKey=_View(x448.X448PrivateKey, generate=_X448PrivateKey.generate)),
    "ec": _View(ec, generate_private_key=_ec_generate_private_key),
}


def serve_streams_by_id(quic: Any) -> None:
    """On a seeded thread: the streams of the aioquic connection ``quic`` hash by stream id
    (aioquic builds its stream service order from a set of streams)."""
    if _rng() is not None:
        aq.serve_streams_by_id(quic)


def _install() -> None:
    replacements = [(name, "os", _OS_VIEW) for name in _OS_USERS]
    replacements += [("aioquic.tls", name, view) for name, view in _TLS_VIEWS.items()]
    _saved.extend(aq.swap_module_globals(replacements))


def _uninstall() -> None:
    aq.restore_module_globals(_saved)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[random.Random]:
    """While active, aioquic's randomness on this thread (and ``random``'s) comes from
    ``seed``; everything is restored on exit. Yields the generator."""
    global _active
    if _rng() is not None:
        raise RuntimeError("a seeded run is already active on this thread")
    rng = random.Random(f"quicsim-bytes:{seed}")
    with _install_lock:
        if _active == 0:
            _install()
        _active += 1
    saved_random = random.getstate()
    random.seed(f"quicsim-random:{seed}")
    _state.rng = rng
    try:
        yield rng
    finally:
        _state.rng = None
        random.setstate(saved_random)
        with _install_lock:
            _active -= 1
            if _active == 0:
                _uninstall()
