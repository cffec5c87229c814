"""`lmrec-download <release> [--dest DIR] [--url URL] [--md5 HEX]`: fetch an official release, verify it, move it
into place."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from lmrec.data.download import download_release, has_packaged_checksums, known_releases
from lmrec.errors import InputError

#: The `data=<name>` config that reads each release from `paths.data_dir/<release>`.
CONFIGS = {
    "ml-latest-small": "movielens_small",
    "ml-100k": "movielens_100k",
    "ml-1m": "movielens_1m",
    "ml-10m": "movielens_10m",
    "ml-20m": "movielens_20m",
    "ml-25m": "movielens_25m",
    "ml-32m": "movielens_32m",
}


def main(argv: list[str] | None = None) -> int:
    """Fetch and verify a dataset release for `paths.data_dir` (exit code 2 on any failure, nothing left behind).

    Releases whose SHA-256 digests ship with lmrec are checked file by file; the others against the MD5 that the
    server publishes next to the archive (`<url>.md5`, or --md5), after which the folder's SHA256SUMS pins them.
    """
    releases = known_releases()
    parser = argparse.ArgumentParser(
        prog="lmrec-download", description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", choices=sorted(releases), help="release to fetch")
    parser.add_argument("--dest", type=Path, default=None, help="target folder (default: data/<name>)")
    parser.add_argument(
        "--url", default=None, help="download from this address instead (a mirror; its MD5 from <url>.md5)"
    )
    parser.add_argument("--md5", default=None, help="the archive's expected MD5, instead of the published one")
    args = parser.parse_args(argv)
    dest = args.dest or Path("data") / args.name
    try:
        path = download_release(args.name, dest, url=args.url, md5=args.md5)
    except (InputError, OSError, zipfile.BadZipFile) as err:
        print(f"lmrec-download: {type(err).__name__}: {err}")
        return 2
    how = "packaged SHA-256 checksums" if has_packaged_checksums(args.name) else "the archive's MD5"
    config = f"data={CONFIGS[args.name]} " if args.name in CONFIGS else ""
    where = f"paths.data_dir={path.parent}" if path.name == args.name else f"data.source.root={path}"
    print(f"{args.name} verified ({how}) at {path}; train on it with {config}{where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
