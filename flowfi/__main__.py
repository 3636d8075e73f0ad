"""The `flowfi` command: the one place that composes the indexer, the API and the local network."""
from flowfi.cli import main

main()
