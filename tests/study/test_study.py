"""`lmrec-study` end to end on a slice of the bundled data: tuning on validation, seeds, the report, resuming."""

from __future__ import annotations

import json

import pytest
import yaml

from lmrec.errors import ConfigError
from lmrec.study.report import write_study
from lmrec.study.runner import Study, train_command
from lmrec.study.spec import load_spec, parse_spec
from tests.helpers import run_cli

SPEC = {
    "seeds": [3],
    "budget": 2,
    "common": ["task=ranking", "logger=csv", "data.max_users=40"],
    "datasets": {"movielens": []},
    "settings": {"warm": []},
    "arms": {
        "pop": {"overrides": ["model=pop"]},
        "knn": {"overrides": ["model=itemknn"], "search": {"model.baseline.neighbours": [5, 50]}},
    },
    "baseline": "pop",
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    started = []

    def command(job):
        started.append(job.name)
        return [*train_command(job), f"paths.cache_dir={out / 'cache'}"]

    spec = parse_spec(SPEC)
    runner = Study(spec, out / "study", command=command, echo=lambda line: None)
    results = runner.run()
    study_md = write_study(spec, results, runner.failed, runner.out)
    return {"out": out, "runner": runner, "results": results, "md": study_md, "started": started, "spec": spec}


def test_each_arm_is_tuned_on_validation_then_run_on_every_seed(study):
    runs = study["out"] / "study" / "runs" / "movielens" / "warm"
    assert sorted(p.name for p in (runs / "knn").iterdir() if p.is_dir()) == ["seed-3", "tune-0", "tune-1"]
    assert sorted(p.name for p in (runs / "pop").iterdir() if p.is_dir()) == ["seed-3"]  # nothing to tune
    read = lambda stage, name: json.loads((runs / "knn" / stage / name).read_text())  # noqa: E731
    tuned = {stage: read(stage, "run.json")["best_value"] for stage in ("tune-0", "tune-1")}
    for stage in tuned:  # tuning never tests: the test split is untouched until the choice is made
        assert not any(key.startswith("test/") for key in read(stage, "metrics.json"))
    entry = study["results"]["movielens-warm"]["knn"]
    best = max(tuned, key=tuned.get)
    assert [row["stage"] for row in entry["tuning"] if row["chosen"]] == [best]
    overrides = yaml.safe_load((runs / "knn" / "seed-3" / ".hydra" / "overrides.yaml").read_text())
    tried = yaml.safe_load((runs / "knn" / best / ".hydra" / "overrides.yaml").read_text())
    assert overrides == [o for o in tried if o not in ("test=false", "per_user=false")]  # the same seed tunes
    assert (runs / "knn" / "seed-3" / "per_user" / "test.parquet").is_file()


def test_the_report_compares_the_arms_and_lists_every_choice(study):
    report = study["out"] / "study" / "report" / "movielens-warm"
    compared = json.loads((report / "comparison.json").read_text())
    assert len(compared["configurations"]) == 2 and len(compared["pairs"]) == 1
    text = study["md"].read_text()
    assert "## movielens-warm" in text and "| knn | `model.baseline.neighbours=50` |" in text
    assert "baseline arm `pop`" in text and "ndcg@10" in text


def test_a_killed_study_reruns_only_what_did_not_finish(study):
    killed = study["out"] / "study" / "runs" / "movielens" / "warm" / "knn" / "seed-3"
    (killed / "run.json").unlink()  # as if the job was killed before it recorded its result
    study["started"].clear()
    again = Study(study["spec"], study["out"] / "study", command=study["runner"].command, echo=lambda line: None)
    again.run()
    assert study["started"] == ["movielens/warm/knn/seed-3"]
    assert (killed / "run.json").is_file()
    other = parse_spec({**SPEC, "seeds": [3, 4]})
    with pytest.raises(ConfigError, match="holds a study of another spec"):
        Study(other, study["out"] / "study").run()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"baseline": "nope"}, "baseline='nope'"),
        ({"seeds": [0, 0]}, "each seed once"),
        ({"arms": {"a": {"overrides": ["model=pop", "seed=3"]}}}, "set by the study itself"),
        ({"arms": {"a": {"overrides": ["model=pop"], "search": {"x": []}}}}, "non-empty list"),
        ({"datasets": {"bad name": []}}, "not a usable name"),
        ({"extra": 1}, "unknown key 'extra'"),
    ],
)
def test_a_bad_spec_is_one_line_before_any_run(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_spec({**SPEC, **change})


def test_the_command_checks_its_arguments_and_prints_the_plan(tmp_path):
    spec_file = tmp_path / "mine.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    plan = run_cli("lmrec-study", [f"spec={spec_file}", "dry_run=true", "datasets.other=[data.max_users=20]"], tmp_path)
    assert "other/warm/knn/tune-1: lmrec-train" in plan.stdout and "8 runs" in plan.stdout
    bad = run_cli("lmrec-study", ["spec=nope"], tmp_path, ok=False)
    assert bad.returncode == 2 and "no study of that name; shipped: lm_study" in bad.stderr
    assert load_spec(spec_file, {"datasets.movielens": None, "datasets.x": []}).datasets == {"x": ()}


def test_a_searched_value_that_is_the_arms_default_is_not_tried_twice(tmp_path):
    # itemknn's default is 100 neighbours: that candidate is the arm as given, so the budget goes to 5 and 50.
    arm = {"overrides": ["model=itemknn"], "search": {"model.baseline.neighbours": [100, 5, 50]}}
    spec = parse_spec({**SPEC, "budget": 3, "arms": {"knn": arm}, "baseline": None})
    study = Study(spec, tmp_path / "study")
    tried = [job.candidate for job in study.tuning_jobs("movielens", "warm", "knn")]
    assert tried == [(), ("model.baseline.neighbours=5",), ("model.baseline.neighbours=50",)]
    assert study.total_jobs() == 3 + 1
    bad = parse_spec({**SPEC, "arms": {"knn": {"overrides": ["model=nope"]}}, "baseline": None})
    with pytest.raises(ConfigError, match="does not compose"):
        Study(bad, tmp_path / "bad").total_jobs()


def test_a_resumed_job_run_with_other_overrides_is_refused(study):
    runner = Study(study["spec"], study["out"] / "study", command=study["runner"].command, echo=lambda line: None)
    job = runner.tuning_jobs("movielens", "warm", "knn")[1]
    record = job.folder / ".hydra" / "overrides.yaml"
    kept = record.read_text()
    changed = ["model.baseline.neighbours=7" if o.startswith("model.baseline.neighbours=") else o
               for o in yaml.safe_load(kept)]  # fmt: skip
    assert changed != yaml.safe_load(kept)
    record.write_text(yaml.safe_dump(changed))
    try:
        with pytest.raises(ConfigError, match="other overrides than this study plans"):
            runner.run_job(job, 1)
    finally:
        record.write_text(kept)
