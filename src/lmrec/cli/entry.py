"""What every Hydra entry point does around its work, so each command's module holds only its own steps."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from lmrec.config.resolvers import register_resolvers
from lmrec.errors import report_input_errors
from lmrec.runtime.distributed import distributed_job, quiet_other_ranks, use_job_command_for_ddp_ranks
from lmrec.sweeps.context import in_multirun

# At import, not in main: SLURM and joblib workers unpickle the job function (and so import this module) without
# running the command's main, and Hydra resolves the config's `${lmrec.*:}` values in them.
register_resolvers()


@contextmanager
def entry_point(module: str) -> Iterator[None]:
    """Run one job of the command implemented in `module` (e.g. `lmrec.cli.train`).

    A user's mistake (an InputError) becomes one logged line: exit code 2 for a single run; in a multirun the job
    fails and the sweep goes on. Lightning's local DDP ranks are started as this job alone, other ranks log
    warnings only to the console, and no DDP state outlives the job.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    use_job_command_for_ddp_ranks(module)
    quiet_other_ranks()
    with report_input_errors(exit_process=not in_multirun()), distributed_job():
        yield
