"""`lmrec-study`: the project's question as one command: tune, run and compare language-model and classic
recommenders over datasets, settings and seeds (docs/study.md)."""
