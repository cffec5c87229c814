"""Tasks: one module per task (its loss, its metrics, the batches it needs), plus the full-ranking metrics.

`base` holds the contract (`Task`, `Scorer`) and the checked construction (`build_task`); `rating`, `ranking`,
`next_item` and `impressions` are the tasks; `metrics` the vectorised full-ranking metrics.
"""
