"""Thin wrapper: `python scripts/eval.py run=<run dir>` is the same as `lmrec-eval run=<run dir>`."""

from lmrec.cli.eval import main

if __name__ == "__main__":
    main()
