"""Export the exact split with the dataset's original ids, so other libraries can be run on identical data.

`export_split(data, out_dir)` writes, all or nothing:

- `train.csv`, `val.csv`, `test.csv` (user,item,rating,timestamp), for any tool that reads CSV (Surprise, pandas);
- RecBole's atomic files, named after the folder (`<name>` = `out_dir.name`, `split` for a run's `split/`):
  `<name>.train.inter`, `<name>.valid.inter`, `<name>.test.inter` (`user_id:token`, `item_id:token`,
  `rating:float`, `timestamp:float`), `<name>.item` (`item_id:token` and every item text field as `token_seq`),
  and `<name>.user` when the dataset has user fields (each as `token_seq`).

RecBole finds a dataset at `<data_path>/<dataset>/<dataset>.*`, so the folder name is the dataset name. To run a
RecBole model on lmrec's split of run folder `outputs/run`::

    from recbole.quick_start import run_recbole
    run_recbole(model="BPR", dataset="split", config_dict={
        "data_path": "outputs/run",                      # the folder that holds split/
        "benchmark_filename": ["train", "valid", "test"],  # read the three files as the split, in this order
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
    })

(add `"item": ["item_id", "title", ...]` to `load_col` for models that read item features). lmrec reads the same
files back with `lmrec.data.sources.recbole_atomic.RecBoleAtomic` (`data=recbole_atomic`), whose `split` column
`data.split.strategy=source` trains on.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from lmrec.atomic import atomic_path
from lmrec.data.processed import ProcessedData

#: lmrec's split name -> RecBole's benchmark file suffix (RecBole's own default names).
RECBOLE_SUFFIXES = {"train": "train", "val": "valid", "test": "test"}
INTER_HEADER = {
    "user": "user_id:token",
    "item": "item_id:token",
    "rating": "rating:float",
    "timestamp": "timestamp:float",
}


def split_frame(data: ProcessedData, name: str) -> pd.DataFrame:
    part = data.split(name)
    return pd.DataFrame(
        {
            "user": data.users["user_id"].to_numpy()[part["user_idx"].to_numpy()],
            "item": data.items["item_id"].to_numpy()[part["item_idx"].to_numpy()],
            "rating": part["rating"].to_numpy(),
            "timestamp": part["timestamp"].to_numpy(),
        }
    )


def _side_table(table: pd.DataFrame, id_column: str, skip: tuple[str, ...]) -> pd.DataFrame | None:
    """An items/users table in atomic form: the id as a token, every text field as a token sequence."""
    fields = [c for c in table.columns if c != id_column and c not in skip]
    if id_column == "user_id" and not fields:
        return None
    columns = {f"{id_column}:token": table[id_column].to_numpy()}
    for name in fields:  # a user the users file lacks has NaN fields after the merge: written empty
        columns[f"{name}:token_seq"] = table[name].fillna("").astype(str).to_numpy()
    return pd.DataFrame(columns)


def recbole_tables(data: ProcessedData, name: str) -> dict[str, pd.DataFrame]:
    """File name -> table of every RecBole atomic file for this split (see the module docstring)."""
    tables = {
        f"{name}.{suffix}.inter": split_frame(data, split).rename(columns=INTER_HEADER)
        for split, suffix in RECBOLE_SUFFIXES.items()
    }
    # `text` is lmrec's rendering of the fields by the template: the fields themselves are the item's data.
    tables[f"{name}.item"] = _side_table(data.items, "item_id", ("text",))
    users = _side_table(data.users, "user_id", ())
    if users is not None:
        tables[f"{name}.user"] = users
    return tables


def recbole_files(out_dir: Path, name: str | None = None) -> list[Path]:
    """The atomic files `export_split(data, out_dir)` writes (without the optional `.user`)."""
    out_dir = Path(out_dir)
    name = name or out_dir.name
    return [out_dir / f"{name}.{suffix}.inter" for suffix in RECBOLE_SUFFIXES.values()] + [out_dir / f"{name}.item"]


def export_split(data: ProcessedData, out_dir: Path, name: str | None = None) -> dict[str, Path]:
    """Write train.csv, val.csv and test.csv (user,item,rating,timestamp) and RecBole's atomic files of the split.

    `name` is the RecBole dataset name (default: the folder's name, which is what RecBole expects). Every file is
    renamed into place only once all of them are written, so a failure leaves no partial export. Ratings keep
    their shortest exact representation (3.25 stays 3.25). Returns the three CSV files by split name
    (`recbole_files` lists the atomic ones).
    """
    out_dir = Path(out_dir)
    name = name or out_dir.name
    csv = {split: split_frame(data, split) for split in ("train", "val", "test")}
    atomic = recbole_tables(data, name)
    with ExitStack() as stack:
        for split, frame in csv.items():
            frame.to_csv(stack.enter_context(atomic_path(out_dir / f"{split}.csv")), index=False)
        for file_name, frame in atomic.items():
            # Tab-separated; a field holding a tab, a quote or a line break is quoted, as RecBole's reader expects.
            frame.to_csv(stack.enter_context(atomic_path(out_dir / file_name)), sep="\t", index=False)
    return {split: out_dir / f"{split}.csv" for split in csv}
