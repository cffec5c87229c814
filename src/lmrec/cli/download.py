"""`lmrec-download <release> [--dest DIR] [--url URL]`: fetch an official release, verify it, move it into place."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from lmrec.data.download import download_release, known_releases
from lmrec.errors import InputError


def main(argv: list[str] | None = None) -> int:
    """Fetch and verify a dataset release for `paths.data_dir` (exit code 2 on any failure, nothing left behind)."""
    releases = known_releases()
    parser = argparse.ArgumentParser(prog="lmrec-download", description=main.__doc__)
    parser.add_argument("name", choices=sorted(releases), help="release to fetch")
    parser.add_argument("--dest", type=Path, default=None, help="target folder (default: data/<name>)")
    parser.add_argument("--url", default=None, help="download from this address instead (a mirror)")
    args = parser.parse_args(argv)
    dest = args.dest or Path("data") / args.name
    try:
        path = download_release(args.name, dest, url=args.url)
    except (InputError, OSError, zipfile.BadZipFile) as err:
        print(f"lmrec-download: {type(err).__name__}: {err}")
        return 2
    print(f"{args.name} verified at {path}; train on it with paths.data_dir={path.parent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
