"""`lmrec-recommend`, `-similar`, `-explain` and `lmrec-export embeddings=true` as a user runs them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lmrec.serving.recommender import load
from tests.helpers import run_cli


def test_recommend_similar_and_explain_print_what_the_api_answers(trained_runs, tmp_path):
    rec = load(trained_runs["ease"])
    user = int(rec.users[3])
    out = run_cli("lmrec-recommend", [f"run={trained_runs['ease']}", f"user={user}", "k=4", "--json"], tmp_path)
    assert json.loads(out.stdout) == [r.as_dict() for r in rec.recommend(user=user, k=4)]
    item = int(rec.item_id(2))
    table = run_cli("lmrec-similar", [f"run={trained_runs['ease']}", f"item={item}", "k=3"], tmp_path).stdout
    assert table.splitlines()[0].split() == ["rank", "item_id", "score", "title"]
    assert [line.split()[1] for line in table.splitlines()[2:]] == [str(r.item_id) for r in rec.similar(item=item, k=3)]
    history = [int(rec.item_id(i)) for i in (1, 5)]
    why = run_cli(
        "lmrec-explain", [f"run={trained_runs['ease']}", f"history={history}", f"item={item}"], tmp_path
    ).stdout
    assert ", exact; constant 0.0000" in why.splitlines()[0] and "not causes" in why


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["usr=1"], "unknown argument 'usr'; did you mean 'user'?"),
        (["user=no-such-user"], "RequestError: user 'no-such-user' is not a user of this run's data"),
        (["user=1", "k=0"], "expected a whole number from 1 to 1000"),
        (["user"], "is not key=value"),
    ],
)
def test_wrong_arguments_are_one_line(trained_runs, tmp_path, args, message):
    result = run_cli("lmrec-recommend", [f"run={trained_runs['ease']}", *args], tmp_path, ok=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_export_writes_the_vectors_that_score_as_the_model(trained_runs, tmp_path):
    run = trained_runs["history"]
    out = tmp_path / "vectors"
    run_cli("lmrec-export", [f"run={run}", "embeddings=true", "index=ivf", f"output_dir={out}"], tmp_path)
    rec = load(run)
    items, users = pd.read_parquet(out / "items.parquet"), pd.read_parquet(out / "users.parquet")
    item_vectors, user_vectors = np.load(out / "item_vectors.npy"), np.load(out / "user_vectors.npy")
    assert items["item_id"].tolist() == list(rec.items) and items["title"].tolist() == rec.titles
    assert users["user_id"].tolist() == list(rec.users)
    # The manifest's recipe: <u, i> + item bias + user bias is the model's score of every user and item.
    scores = user_vectors @ item_vectors.T + items["bias"].to_numpy()[None, :] + users["bias"].to_numpy()[:, None]
    expected = rec.user_scores(torch.arange(len(rec.users))).numpy()
    assert np.allclose(scores, expected, atol=1e-4)
    manifest = json.loads((out / "embeddings.json").read_text())
    report = json.loads((out / "index.json").read_text())
    assert manifest["dim"] == item_vectors.shape[1] and manifest["index"]["recall@10"] == report["recall"]
    assert report["recall"] >= 0.95 and report["items"] == len(items) and report["dim"] == item_vectors.shape[1] + 1
    faiss = pytest.importorskip("faiss")
    assert faiss.read_index(str(out / "index.faiss")).ntotal == len(items)


def test_export_of_a_model_without_item_vectors_says_why(trained_runs, tmp_path):
    args = [f"run={trained_runs['ease']}", "embeddings=true", f"output_dir={tmp_path / 'out'}"]
    result = run_cli("lmrec-export", args, tmp_path, ok=False)
    assert result.returncode == 2 and "has no item vectors" in result.stdout + result.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written
    wrong = run_cli(
        "lmrec-export", [f"run={trained_runs['history']}", "embeddings=true", "index=annoy"], tmp_path, ok=False
    )
    assert wrong.returncode == 2 and "index='annoy'; expected one of ivf, hnsw" in wrong.stdout + wrong.stderr
