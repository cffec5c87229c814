"""Timestamp checks of the MovieLens 100K (`u.data`, tab) and 1M / 10M (`.dat`, `::`) readers: the same bounds,
options and messages as the CSV releases (`MOVIELENS_TIMES`, `data.source.min_timestamp` / `max_timestamp`).

Each test writes its own tiny files in the release's format. A timestamp cut short on the last line (`14938`:
the download stopped inside it) would otherwise read as a rating from 1970 and become every temporal split's
oldest interaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from lmrec.cli.components import build_data
from lmrec.data.io.errors import DataValidationError
from lmrec.data.sources.base import Source
from lmrec.data.sources.movielens import MOVIELENS_TIMES
from lmrec.data.sources.movielens_100k import MovieLens100K
from lmrec.data.sources.movielens_dat import MovieLens1M, MovieLens10M
from lmrec.errors import ConfigError
from tests.helpers import compose_train

RANGE = "between 788918400 (1995-01-01) and 9999999999 (2286-11-20)"
CUT = " (the file's last line has no line end: was the file cut short?)"
FLAGS = "|".join("0" * 19)  # u.item's 19 genre flags


@dataclass(frozen=True)
class Release:
    """A tiny folder of one release: its other files, and its ratings file as lines of (user, item, rating, time)."""

    cls: type[Source]
    config: str
    ratings_file: str
    column: str  # the timestamp column as the release's README names it
    separator: str
    others: dict[str, str]

    def write(self, root: Path, times: list[str], end: str = "\n") -> Path:
        root.mkdir(parents=True, exist_ok=True)
        for name, text in self.others.items():
            (root / name).write_text(text, encoding="latin-1")
        rows = [(1, 1, 5), (1, 2, 3), (2, 1, 4)]
        lines = [self.separator.join(map(str, (*row, time))) for row, time in zip(rows, times, strict=True)]
        (root / self.ratings_file).write_text("\n".join(lines) + end, encoding="latin-1")
        return root


MOVIES_DAT = "1::Toy Story (1995)::Animation\n2::Heat (1995)::Action\n"
TAGS_DAT = "1::1::pixar::1139045764\n2::2::heist::1139045765\n"
ML100K = Release(
    MovieLens100K,
    "movielens_100k",
    "u.data",
    "timestamp",
    "\t",
    {
        "u.item": f"1|Toy Story (1995)|01-Jan-1995||http://x|{FLAGS}\n2|GoldenEye (1995)|01-Jan-1995||http://y|{FLAGS}\n",
        "u.user": "1|24|M|technician|85711\n2|53|F|other|94043\n",
    },
)
ML1M = Release(
    MovieLens1M,
    "movielens_1m",
    "ratings.dat",
    "Timestamp",
    "::",
    {"movies.dat": MOVIES_DAT, "users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n"},
)
ML10M = Release(
    MovieLens10M, "movielens_10m", "ratings.dat", "Timestamp", "::", {"movies.dat": MOVIES_DAT, "tags.dat": TAGS_DAT}
)
RELEASES = pytest.mark.parametrize("release", [ML100K, ML1M, ML10M], ids=["100k", "1m", "10m"])
TIMES = ["874965758", "876893171", "978300275"]


def error(source: Source) -> str:
    with pytest.raises(DataValidationError) as info:
        source.read()
    return str(info.value)


@RELEASES
def test_a_time_cut_short_on_the_last_line_is_refused_and_one_in_range_passes(release, tmp_path):
    root = release.write(tmp_path / "ok", TIMES)
    assert release.cls(root).read().interactions["timestamp"].tolist() == [int(t) for t in TIMES]
    root = release.write(tmp_path / "cut", [*TIMES[:2], "14938"], end="")  # the download stopped in the last time
    assert error(release.cls(root)) == (
        f"{root / release.ratings_file}:3: column '{release.column}': expected a Unix time in seconds {RANGE}, "
        f"got 14938{CUT}"
    )
    # The same value on a complete line mid-file: an ordinary located error, with no guess about the file's end.
    root = release.write(tmp_path / "mid", [TIMES[0], "14938", TIMES[2]])
    expected = (
        f"{release.ratings_file}:2: column '{release.column}': expected a Unix time in seconds {RANGE}, got 14938"
    )
    assert error(release.cls(root)).endswith(expected)


@RELEASES
def test_milliseconds_are_refused_and_null_bounds_turn_the_check_off(release, tmp_path):
    millis = [TIMES[0] + "000", *TIMES[1:]]  # 13 digits: milliseconds where seconds belong
    root = release.write(tmp_path, millis)
    expected = f":1: column '{release.column}': expected a Unix time in seconds {RANGE}, got 874965758000"
    assert error(release.cls(root)).endswith(expected)
    assert error(release.cls(root, min_timestamp=None)).endswith("up to 9999999999 (2286-11-20), got 874965758000")
    assert release.cls(root, max_timestamp=None).read().interactions["timestamp"].tolist()[0] == 874965758000
    root = release.write(tmp_path / "cut", [*TIMES[:2], "14938"], end="")
    off = release.cls(root, min_timestamp=None, max_timestamp=None)
    assert off.read().interactions["timestamp"].tolist() == [874965758, 876893171, 14938]
    assert (off.options()["min_timestamp"], off.options()["max_timestamp"]) == (None, None)


def test_ml10m_checks_tag_times_too(tmp_path):
    root = ML10M.write(tmp_path, TIMES)
    (root / "tags.dat").write_text(TAGS_DAT.rstrip("\n")[:-5])  # tags.dat cut inside its last time
    assert error(MovieLens10M(root)) == (
        f"{root / 'tags.dat'}:2: column 'Timestamp': expected a Unix time in seconds {RANGE}, got 11390{CUT}"
    )
    tables = MovieLens10M(root, min_timestamp=None).read()
    assert tables.items.set_index("item_id")["tags"].to_dict() == {1: "pixar", 2: "heist"}


@RELEASES
def test_custom_bounds_name_the_range_and_are_part_of_the_cache_key(release, tmp_path):
    root = release.write(tmp_path, TIMES)
    assert error(release.cls(root, min_timestamp=876893171, max_timestamp=900000000)) == (
        f"{root / release.ratings_file}:1: column '{release.column}': expected a Unix time in seconds between "
        "876893171 (1997-10-15) and 900000000 (1998-07-09), got 874965758"
    )
    options = release.cls(root).options()
    assert (options["min_timestamp"], options["max_timestamp"]) == (MOVIELENS_TIMES.low, MOVIELENS_TIMES.high)
    assert release.cls(root, min_timestamp=1).identity() != release.cls(root).identity()


@RELEASES
def test_bad_bounds_are_config_errors_before_any_file_is_read(release, tmp_path):
    missing = tmp_path / "not-there"  # nothing is read: the bounds are checked when the source is built
    with pytest.raises(ConfigError, match=r"^data.source.min_timestamp='abc'; expected Unix seconds"):
        release.cls(missing, min_timestamp="abc")
    with pytest.raises(ConfigError, match="min_timestamp=5 must not be after data.source.max_timestamp=1"):
        release.cls(missing, min_timestamp=5, max_timestamp=1)


def test_drop_invalid_drops_and_counts_implausible_times(tmp_path, caplog):
    root = ML100K.write(tmp_path, [TIMES[0], "14938", TIMES[2]])
    with caplog.at_level(logging.WARNING, logger="lmrec.data.io"):
        tables = MovieLens100K(root).read(drop_invalid=True)
    assert tables.interactions["timestamp"].tolist() == [874965758, 978300275]
    assert tables.dropped["u.data"] == {"timestamp out of range": 1}
    assert f"{root / 'u.data'}: dropped 1 row (1 timestamp out of range)" in caplog.text


@RELEASES
def test_the_yaml_options_reach_the_reader(release, tmp_path):
    release.write(tmp_path / "data" / release.config, [*TIMES[:2], "14938"], end="")
    base = [f"data={release.config}", f"data.source.root={tmp_path / 'data' / release.config}"]
    cfg = compose_train(base, tmp_path / "a", tmp_path / "cache")
    assert (cfg.data.source.min_timestamp, cfg.data.source.max_timestamp) == (MOVIELENS_TIMES.low, MOVIELENS_TIMES.high)
    _, datamodule = build_data(cfg)
    with pytest.raises(DataValidationError, match=rf"{release.ratings_file}:3: column '{release.column}': expected"):
        datamodule.prepare()  # the data step: no model or encoder exists yet
    _, datamodule = build_data(compose_train([*base, "data.source.min_timestamp=null"], tmp_path / "b", tmp_path))
    assert datamodule.source.times.low is None and len(datamodule.source.read().interactions) == 3
