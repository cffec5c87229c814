"""Using a trained run: recommendations for known and new users, similar items, explanations, an index, a service.

`lmrec.serving.load(run_dir)` gives a `Recommender`; `lmrec-recommend`, `lmrec-similar`, `lmrec-explain` and
`lmrec-serve` are its command-line and HTTP faces (docs/serving.md).
"""
