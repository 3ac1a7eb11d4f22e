"""``python -m quicsim.peers.install [PEER ...]``: install the peers that are not installed
yet (CI runs it). One line per peer; exit 0 even when one cannot be installed here (its
tests and scenarios are then skipped, saying why)."""

from __future__ import annotations

import sys

from . import PEERS, launcher


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(PEERS)
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        print(f"quicsim.peers.install: unknown peer {unknown[0]!r} (one of {', '.join(PEERS)})", file=sys.stderr)
        return 2
    for name in names:
        peer = launcher(name)
        if peer.missing() is None:
            print(f"{name}: installed")
            continue
        why = peer.install()
        print(f"{name}: installed now" if why is None else f"{name}: not installed: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
