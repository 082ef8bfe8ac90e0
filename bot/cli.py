"""Moved to `bhxh.cli`: the command line builds the whole application, so it sits above `bot/`.

This forwarder only keeps `python -m bot.cli` and `from bot.cli import main` working until their last
callers (tests/test_knowledge.py, tests/test_security.py, tests/test_engine.py, benchmarks/load.py) use
`bhxh.cli`; then delete it. It imports nothing at module level.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from bhxh.cli import main as bhxh_main

    return bhxh_main(argv)


if __name__ == "__main__":
    sys.exit(main())
