"""lmrec's benchmarks as a registry: one module per benchmark under `lmrec.bench.suite`, run by `lmrec-bench`.

Every benchmark builds its data and models through the config path `lmrec-train` uses, writes one JSON record
(its figures, the command, the code version, the machine and its load), and has a `--quick` mode the test suite
runs, so none of them can silently stop working. `docs/benchmarks.md` holds the tables generated from the records.
"""
