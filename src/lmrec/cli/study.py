"""`lmrec-study`: the project's question as one command (docs/study.md).

    lmrec-study [spec=lm_study] [out=outputs/study] [datasets.<name>=[overrides]] [settings.<name>=[...]]
                [seeds=[0,1,2]] [budget=4] [baseline=<arm>] [dry_run=true]

Arguments are `key=value` (values read as YAML: `datasets.scientific=[data=unisrec,data.source.root=/data/sci]`;
`datasets.movielens=null` drops an entry). Every argument and the whole spec are checked before the first run.
Running it again with the same arguments continues a study that stopped: finished runs are kept, killed ones rerun.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from lmrec.errors import InputError, report_input_errors

OWN = ("spec", "out", "dry_run")
SPEC_KEYS = ("seeds", "budget", "common", "baseline", "compare")
GROUPS = ("datasets.", "settings.", "arms.")


def parse(argv: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(this command's own arguments, changes to the spec)."""
    own: dict[str, Any] = {"spec": "lm_study", "out": "outputs/study", "dry_run": False}
    changes: dict[str, Any] = {}
    for arg in argv:
        if arg in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        key, sep, raw = arg.partition("=")
        if not sep:
            raise InputError(f"lmrec-study: argument {arg!r} is not key=value")
        try:
            value = yaml.safe_load(raw) if raw else None
        except yaml.YAMLError:
            raise InputError(f"lmrec-study: {key}={raw!r} is not a value or a [list]") from None
        if key in OWN:
            own[key] = value
        elif key in SPEC_KEYS or key.startswith(GROUPS):
            changes[key] = value
        else:
            expected = ", ".join([*OWN, *SPEC_KEYS, "datasets.<name>", "settings.<name>", "arms.<name>"])
            raise InputError(f"lmrec-study: unknown argument {key!r}; expected one of {expected}")
    if not isinstance(own["dry_run"], bool):
        raise InputError(f"lmrec-study: dry_run={own['dry_run']!r}; expected true or false")
    return own, changes


def main() -> None:
    from lmrec.config.location import config_dir
    from lmrec.study.report import write_study
    from lmrec.study.runner import Study
    from lmrec.study.spec import load_spec, spec_path

    with report_input_errors():
        own, changes = parse(sys.argv[1:])
        spec = load_spec(spec_path(str(own["spec"]), config_dir()), changes)
        study = Study(spec, Path(str(own["out"])))
        if own["dry_run"]:
            for dataset, setting in study.cells():
                for arm in spec.arms:
                    for job in study.tuning_jobs(dataset, setting, arm):
                        print(f"{job.name}: lmrec-train {' '.join(job.overrides)}")
                    print(f"{dataset}/{setting}/{arm}/seed-*: the best candidate on seeds {list(spec.seeds)}")
            print(f"{study.total_jobs()} runs")
            return
        results = study.run()
    study_md = write_study(spec, results, study.failed, study.out)
    print(f"study written to {study_md}" + (f" ({len(study.failed)} runs failed)" if study.failed else ""))
