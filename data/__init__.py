"""The bundled dataset (ml-latest-small, with its README.txt licence), shipped inside the package as
`lmrec.bundled` (see setup.py); `paths.data_dir` points here by default."""
