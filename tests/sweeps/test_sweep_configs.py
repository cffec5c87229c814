"""Launcher, sweeper, trainer and W&B sweep configs compose into what they promise, without a cluster; the pieces
that name and summarise sweep jobs and record provenance behave on their own."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lmrec.cli.components import build_data
from lmrec.config.location import config_dir
from lmrec.errors import ConfigError
from lmrec.runs.provenance import git_state, package_version
from lmrec.sweeps.context import WANDB_NAME_MAX, fit_wandb_name, job_choices, job_threads, sweep_name
from lmrec.sweeps.objective import check_optimized_metric
from tests.conftest import REPO_ROOT
from tests.helpers import compose_train


def _compose_with_hydra(overrides: list[str]):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def test_slurm_launcher_submits_one_multi_node_job_per_sweep_job(tmp_path, monkeypatch):
    """The launcher runs for real up to submission (a stub `srun` on PATH stands in for the cluster's), and
    submitit's executor writes the batch script it would submit."""
    import submitit

    stub = tmp_path / "bin" / "srun"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 1\n")
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub.parent}:{os.environ['PATH']}")

    cfg = _compose_with_hydra(
        [
            "hydra/launcher=slurm",
            "hydra.launcher.nodes=2",
            "hydra.launcher.tasks_per_node=4",
            "hydra.launcher.partition=gpu",
            f"hydra.sweep.dir={tmp_path}",
            "hydra.job.name=train",
        ]
    )
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    submitted = {}

    def capture(executor, fn, *args):
        submitted.update(executor=executor, jobs=list(zip(*args, strict=True)))
        return []

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", capture)
    launcher.launch([["model/head=dot"], ["model/head=mlp"]], initial_job_idx=0)
    assert [job[0] for job in submitted["jobs"]] == [["model/head=dot"], ["model/head=mlp"]]
    script = submitted["executor"]._executor._make_submission_file_text("lmrec-job", "uid")
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu", "--time=240"):
        assert f"#SBATCH {line}\n" in script, line
    assert "srun" in script


def test_ddp_slurm_trainer_takes_gpus_and_nodes_from_the_allocation(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "4")
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "2")
    trainer = OmegaConf.to_container(compose_train(["trainer=ddp_slurm"], tmp_path, tmp_path).trainer, resolve=True)
    assert (trainer["devices"], trainer["num_nodes"]) == (4, 2)
    assert (trainer["strategy"], trainer["precision"], trainer["accelerator"]) == ("ddp", "bf16-mixed", "gpu")
    monkeypatch.delenv("SLURM_NTASKS_PER_NODE")
    monkeypatch.delenv("SLURM_JOB_NUM_NODES")
    trainer = OmegaConf.to_container(compose_train(["trainer=ddp_slurm"], tmp_path, tmp_path).trainer, resolve=True)
    assert (trainer["devices"], trainer["num_nodes"]) == (1, 1)


@pytest.mark.parametrize(
    ("task", "metric", "direction"), [("rating", "val/rmse", "minimize"), ("ranking", "val/ndcg@10", "maximize")]
)
def test_optuna_search_optimises_the_tasks_validation_metric(task, metric, direction):
    cfg = _compose_with_hydra(["hparams_search=optuna", f"task={task}"])
    assert cfg.optimized_metric == f"best/{metric}"
    sweeper = OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)
    assert sweeper["direction"] == direction and sweeper["max_failure_rate"] == 1.0
    assert sweeper["_target_"].endswith("OptunaSweeper") and sweeper["sampler"]["seed"] == cfg.seed
    check_optimized_metric(cfg.optimized_metric, _task(cfg), cfg.task.monitor)  # a metric the run writes: no error


def _task(cfg):
    return build_data(cfg)[0]


def test_unknown_optimized_metric_is_a_config_error(tmp_path):
    cfg = compose_train(["optimized_metric=val/ndcg@10"], tmp_path, tmp_path)
    with pytest.raises(ConfigError, match=r"optimized_metric=val/ndcg@10 is not a metric this run writes; .*best/val"):
        check_optimized_metric(cfg.optimized_metric, _task(cfg), cfg.task.monitor)


def test_wandb_sweep_parameters_are_overrides_of_lmrec_train(tmp_path):
    sweep = yaml.safe_load((REPO_ROOT / "scripts" / "wandb_sweep.yaml").read_text())
    assert sweep["command"] == ["lmrec-train", "${args_no_hyphens}"]  # key=value arguments: Hydra overrides
    assert sweep["metric"]["name"] == "best/" + compose_train([], tmp_path, tmp_path).task.monitor
    for key, spec in sweep["parameters"].items():
        value = spec["values"][-1] if "values" in spec else spec["max"]
        cfg = compose_train([f"{key}={value}"], tmp_path, tmp_path)
        chosen = cfg.model[key.split("/")[1]].name if "/" in key else OmegaConf.select(cfg, key)
        assert chosen == value, key


def test_torch_threads_default_is_half_the_usable_cores_and_must_be_positive(monkeypatch):
    from lmrec.sweeps import context

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(context, "usable_cores", lambda: 6)
    assert job_threads(3) == (3, "torch_threads")
    assert job_threads(None)[0] == 3  # outside a parallel sweep: half the cores
    monkeypatch.setattr(context, "usable_cores", lambda: 1)
    assert job_threads(None)[0] == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert job_threads(None)[0] is None  # the user's OpenMP setting is left to torch
    with pytest.raises(ConfigError, match="torch_threads=0"):
        job_threads(0)


def test_job_choices_are_the_swept_values_of_this_job(tmp_path):
    master = {"hydra": {"overrides": {"task": ["model/head=dot,mlp", "data.max_users=30", "seed=range(1,3)"]}}}
    OmegaConf.save(OmegaConf.create(master), tmp_path / "multirun.yaml")
    job = {
        "sweep": {"dir": str(tmp_path)},
        "sweeper": {"params": {"model.dim": "choice(32,64)"}},
        "overrides": {"task": ["model/head=mlp", "data.max_users=30", "seed=2", "model.dim=64"]},
    }
    assert job_choices(OmegaConf.create(job)) == "head=mlp,seed=2,dim=64"
    (tmp_path / "multirun.yaml").unlink()  # no record of the sweep: every override names the job
    job["sweeper"]["params"] = None
    assert job_choices(OmegaConf.create(job)) == "head=mlp,max_users=30,seed=2,dim=64"


def test_long_wandb_names_are_shortened_and_stay_distinct():
    first, second = fit_wandb_name("x" * 70 + "a"), fit_wandb_name("x" * 70 + "b")
    assert len(first) == len(second) == WANDB_NAME_MAX and first != second
    assert fit_wandb_name("head=mlp") == "head=mlp"


def test_git_state_records_commit_and_local_changes(tmp_path):
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    assert git_state(tmp_path) == {"git_commit": None, "git_dirty": None}  # not a checkout
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.txt").write_text("1\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert git_state(tmp_path) == {"git_commit": commit, "git_dirty": False}
    (tmp_path / "a.txt").write_text("2\n")
    assert git_state(tmp_path) == {"git_commit": commit, "git_dirty": True}
    subprocess.run([*git, "checkout", "-q", "a.txt"], check=True)
    (tmp_path / "new.yaml").write_text("x: 1\n")  # an untracked config is not in the commit either
    assert git_state(tmp_path)["git_dirty"] is True


def test_missing_packages_are_recorded_as_null():
    import torch

    assert package_version("torch") == torch.__version__
    assert package_version("surely-not-an-installed-distribution") is None


def test_parallel_jobs_share_the_cores(monkeypatch):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    from lmrec.sweeps import context

    monkeypatch.setattr(context, "usable_cores", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    hydra = HydraConfig.instance()
    try:
        for launcher, expected in (("parallel", 4), ("basic", 4)):  # parallel: n_jobs=2; basic: half the cores
            cfg = _compose_with_hydra([f"hydra/launcher={launcher}"])
            with open_dict(cfg):
                cfg.hydra.mode = RunMode.MULTIRUN
            hydra.set_config(cfg)
            assert job_threads(None)[0] == expected
            assert job_threads(3)[0] == 3  # an explicit torch_threads wins
    finally:
        hydra.cfg = None


def test_sweeps_and_runs_started_in_the_same_second_get_different_folders():
    dirs = []
    for _ in range(2):
        cfg = _compose_with_hydra(["hydra.job.name=train"])
        dirs.append((str(cfg.hydra.sweep.dir), str(cfg.hydra.run.dir)))
    (sweep_a, run_a), (sweep_b, run_b) = dirs
    assert sweep_a != sweep_b and run_a != run_b  # the names go down to microseconds


def test_sweep_name_is_the_dated_folder_or_the_name_the_user_gave(tmp_path):
    dated = OmegaConf.create({"sweep": {"dir": str(tmp_path / "logs" / "multiruns" / "2026-11-27" / "19-50-00-1")}})
    assert sweep_name(dated, str(tmp_path / "logs")) == "2026-11-27_19-50-00-1"
    named = OmegaConf.create({"sweep": {"dir": str(tmp_path / "towers")}})
    assert sweep_name(named, str(tmp_path / "logs")) == "towers"


def test_an_optimized_metric_the_run_did_not_write_is_a_config_error(tmp_path):
    from lmrec.sweeps.objective import objective_value

    name = "best/val/rmse"
    assert objective_value(name, tmp_path) is None  # another rank: rank zero writes metrics.json
    (tmp_path / "metrics.json").write_text('{"test/rmse": 0.9}')
    with pytest.raises(ConfigError, match="optimized_metric=best/val/rmse was not written"):
        objective_value(name, tmp_path)
    (tmp_path / "metrics.json").write_text('{"best/val/rmse": 0.8}')
    assert objective_value(name, tmp_path) == 0.8
