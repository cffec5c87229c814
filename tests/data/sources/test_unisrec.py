"""The UniSRec/VQ-Rec release source on files written here in the release's exact format."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmrec.data.io.errors import DataValidationError
from lmrec.data.sources.unisrec import UniSRecRelease
from lmrec.errors import ConfigError

HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
CAP = 50


def release_rows(sequences: dict[int, list[int]], cap: int = CAP) -> dict[str, list[str]]:
    """The three `.inter` files' rows of full sequences, as the release writes them: every training prefix (the
    longest first), one validation and one test row per user, each history cut to its last `cap` items."""
    files: dict[str, list[str]] = {"train": [], "valid": [], "test": []}

    def row(user: int, history: list[int], target: int) -> str:
        return f"{user}\t{' '.join(map(str, history[-cap:]))}\t{target}\n"

    for user, seq in sequences.items():
        train = seq[:-2]
        files["train"] += [row(user, train[:end], train[end]) for end in range(len(train) - 1, 0, -1)]
        files["valid"].append(row(user, seq[:-2], seq[-2]))
        files["test"].append(row(user, seq[:-1], seq[-1]))
    return files


def write_release(
    root: Path, sequences: dict[int, list[int]], items: int, name: str = "Scientific", **edit: list[str]
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = release_rows(sequences)
    rows.update(edit)
    for split, lines in rows.items():
        (root / f"{name}.{split}.inter").write_text(HEADER + "".join(lines))
    (root / f"{name}.item2index").write_text("".join(f"ASIN{i:04d}\t{i}\n" for i in range(items)))
    (root / f"{name}.user2index").write_text("".join(f"REV{u}\t{u}\n" for u in sequences))
    texts = "".join(f"ASIN{i:04d}\tProduct {i}. Lab Supplies. Brand{i % 3}. \n" for i in range(items))
    (root / f"{name}.text").write_text("item_id:token\ttext:token_seq\n" + texts)
    return root


SEQUENCES = {
    0: [0, 1, 2, 3, 4, 5],
    1: [6, 2, 7, 1, 8],
    2: list(range(9, 9 + 53)) + [3, 4],  # 55 items: every history after the 50th item is cut
}
ITEMS = 9 + 53


def test_each_sequence_and_the_split_are_rebuilt_exactly(tmp_path):
    source = UniSRecRelease(write_release(tmp_path / "set", SEQUENCES, ITEMS))
    assert source.dataset == "Scientific"
    tables = source.read()
    frame = tables.interactions.sort_values(["user_id", "timestamp"])
    for user, seq in SEQUENCES.items():
        mine = frame[frame["user_id"] == f"REV{user}"]
        assert mine["item_id"].tolist() == [f"ASIN{i:04d}" for i in seq]
        assert mine["split"].tolist() == ["train"] * (len(seq) - 2) + ["val", "test"]
        assert mine["timestamp"].tolist() == list(range(len(seq)))
    assert (tables.interactions["rating"] == 1.0).all()
    assert tables.items["item_id"].tolist() == [f"ASIN{i:04d}" for i in range(ITEMS)]
    assert tables.items["text"].iloc[7] == "Product 7. Lab Supplies. Brand1."


def test_a_validation_row_that_is_not_the_test_rows_prefix_is_an_error_naming_file_and_line(tmp_path):
    rows = release_rows(SEQUENCES)
    rows["valid"][1] = "1\t6 2 7\t5\n"  # user 1's validation target is 1 in the test row's history, not 5
    root = write_release(tmp_path / "set", SEQUENCES, ITEMS, valid=rows["valid"])
    with pytest.raises(DataValidationError, match=r"Scientific\.test\.inter:3: column 'item_id_list:token_seq'"):
        UniSRecRelease(root).read()


def test_a_cut_history_that_skips_an_item_is_an_error(tmp_path):
    rows = release_rows(SEQUENCES)
    user2 = [i for i, line in enumerate(rows["train"]) if line.startswith("2\t")]
    history = list(range(9, 9 + 53))
    rows["train"][user2[0]] = f"2\t{' '.join(map(str, history[1:50] + [history[51]]))}\t{history[-1]}\n"
    root = write_release(tmp_path / "set", SEQUENCES, ITEMS, train=rows["train"])
    with pytest.raises(DataValidationError, match=r"Scientific\.train\.inter:\d+: .*does not continue"):
        UniSRecRelease(root).read()


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("0\t0 1 2 3\t999\n", "item index 999 is not in item2index"),
        ("77\t0 1 2 3\t4\n", "user index 77 is not in user2index"),
        ("0\t0 x 2 3\t4\n", "expected item indices separated by spaces"),
        ("0\t0 1 2 3\n", "malformed row"),
    ],
)
def test_bad_values_name_file_line_and_column(tmp_path, bad_row, message):
    rows = release_rows(SEQUENCES)
    rows["test"][0] = bad_row
    root = write_release(tmp_path / "set", SEQUENCES, ITEMS, test=rows["test"])
    with pytest.raises(DataValidationError, match=rf"Scientific\.test\.inter:2: .*{message}"):
        UniSRecRelease(root).read()


def test_an_item_without_text_and_a_text_of_no_item_are_errors(tmp_path):
    root = write_release(tmp_path / "set", SEQUENCES, ITEMS)
    text = (root / "Scientific.text").read_text().splitlines(keepends=True)
    (root / "Scientific.text").write_text("".join(text[:-1]))
    with pytest.raises(DataValidationError, match=r"1 items have no text .*index 61, ASIN0061"):
        UniSRecRelease(root).read()
    (root / "Scientific.text").write_text("".join(text) + "NOTANITEM\tsome text\n")
    with pytest.raises(DataValidationError, match=rf"Scientific\.text:{len(text) + 1}: .*NOTANITEM is not in"):
        UniSRecRelease(root).read()


def test_a_repurchase_follows_the_duplicates_policy(tmp_path):
    sequences = {0: [0, 1, 2, 1, 3], 1: [4, 5, 6, 7, 8]}  # user 0 buys item 1 again, as validation
    root = write_release(tmp_path / "set", sequences, 9)
    tables = UniSRecRelease(root).read()  # duplicates=last: the later purchase stays, with its split
    mine = tables.interactions[tables.interactions["user_id"] == "REV0"].sort_values("timestamp")
    assert mine["item_id"].tolist() == ["ASIN0000", "ASIN0002", "ASIN0001", "ASIN0003"]
    assert mine["split"].tolist() == ["train", "train", "val", "test"]
    assert sum(tables.dropped["Scientific.train.inter"].values()) == 1
    with pytest.raises(DataValidationError, match="duplicate interaction"):
        UniSRecRelease(root, duplicates="error").read()


def test_the_set_is_found_by_its_files_or_named(tmp_path):
    root = write_release(tmp_path / "set", SEQUENCES, ITEMS, name="Pantry")
    assert UniSRecRelease(root).dataset == "Pantry"
    write_release(root, SEQUENCES, ITEMS, name="Office")
    with pytest.raises(ConfigError, match="several sets .*Office, Pantry.*data.source.dataset"):
        UniSRecRelease(root).files()
    assert len(UniSRecRelease(root, dataset="Office").read().interactions) == sum(map(len, SEQUENCES.values()))
    with pytest.raises(DataValidationError, match="Arts.train.inter"):
        UniSRecRelease(root, dataset="Arts").files()
    with pytest.raises(ConfigError, match="history_cap"):
        UniSRecRelease(root, history_cap=0)
