"""``python _kill_after_checkpoint.py SIGNAL STEP xmodal-args...``: run the ``xmodal``
command and send this process ``SIGNAL`` (``KILL`` or ``TERM``) at optimizer step
``STEP``: ``KILL`` once that step's batch is over (its periodic checkpoint, if one falls
there, written, its row logged) as the next batch starts, as a cluster ends a job (no
handler runs, only the files on disk remain); ``TERM`` as that step's batch ends, as a
scheduler announces a preemption."""

import os
import signal
import sys

from xmodal.cli import main
from xmodal.engine.module import LastCheckpoint

SIGNAL, STEP = getattr(signal, f"SIG{sys.argv[1]}"), int(sys.argv[2])
_batch_start, _batch_end = LastCheckpoint.on_train_batch_start, LastCheckpoint.on_train_batch_end


def _batch_start_then_die(self, trainer, *args) -> None:
    if SIGNAL == signal.SIGKILL and trainer.global_step == STEP:
        os.kill(os.getpid(), signal.SIGKILL)
    _batch_start(self, trainer, *args)


def _batch_end_then_term(self, trainer, *args) -> None:
    _batch_end(self, trainer, *args)
    if SIGNAL == signal.SIGTERM and trainer.global_step == STEP:
        os.kill(os.getpid(), signal.SIGTERM)


LastCheckpoint.on_train_batch_start = _batch_start_then_die
LastCheckpoint.on_train_batch_end = _batch_end_then_term
sys.exit(main(sys.argv[3:]))
