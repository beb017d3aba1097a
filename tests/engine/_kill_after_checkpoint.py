"""``python _kill_after_checkpoint.py STEP xmodal-args...``: run the ``xmodal`` command and
SIGKILL this process right after the periodic checkpoint of optimizer step ``STEP`` is
written, as a cluster ends a job: no handler runs, only the files on disk remain."""

import os
import signal
import sys

from xmodal.cli import main
from xmodal.engine.module import LastCheckpoint

STEP = int(sys.argv[1])
_save = LastCheckpoint._save


def _save_then_die(self, trainer) -> None:
    _save(self, trainer)
    if trainer.global_step == STEP:
        os.kill(os.getpid(), signal.SIGKILL)


LastCheckpoint._save = _save_then_die
sys.exit(main(sys.argv[2:]))
