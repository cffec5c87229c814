"""Tasks: one module per task (its loss, its metrics, the batches it needs), plus the full-ranking metrics.

`base` holds the contract (`Task`, `Scorer`); `rating` and `ranking` are the tasks; `metrics` the vectorised
full-ranking metrics; `directions` which way each metric improves; `build` the checked construction.
"""
