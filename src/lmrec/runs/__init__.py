"""Everything that reads or writes a run folder: checkpoints, run.json, metrics.json, eval metrics, a sweep job's
status row, provenance, split export (an exported encoder is written by `lmrec.encoders.tuning`'s export)."""
