"""The `flowfi` command: the one place that composes the indexer, the API and the local network."""

import sys


def main() -> None:
    """The `flowfi` executable. The commands load here, so that a Ctrl-C while they do ends it quietly as
    one a moment later does (flowfi.cli.main)."""
    try:
        from flowfi.cli import main as run
    except KeyboardInterrupt:
        sys.exit(0)
    run()
