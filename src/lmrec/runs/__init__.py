"""Everything that reads or writes a run folder: checkpoints, run.json, metrics.json, provenance, split export."""
