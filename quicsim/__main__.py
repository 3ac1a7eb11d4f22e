"""``python -m quicsim`` and the ``quicsim`` command: Ctrl-C is handled before the slow
imports start, so an early one exits with 130 instead of an import traceback."""

import sys


def main() -> int:
    from . import interrupt

    interrupt.exit_quietly()
    from .cli import main as cli_main

    return cli_main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
