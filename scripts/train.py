"""Thin wrapper: `python scripts/train.py [overrides]` is the same as `lmrec-train [overrides]`."""

from lmrec.cli.train import main

if __name__ == "__main__":
    main()
