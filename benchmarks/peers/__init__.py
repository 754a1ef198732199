"""perdure beside its peers, Temporal and DBOS: ``python -m benchmarks.peers --help``."""
