"""lmrec's Hydra configs, shipped inside the package as `lmrec.conf` (see setup.py); Hydra reads them through
its `pkg://lmrec.conf` search path."""
