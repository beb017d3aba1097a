"""``python _kill_after_checkpoint.py SIGNAL STEP xmodal-args...``: run the ``xmodal``
command and send this process ``SIGNAL`` (``KILL`` or ``TERM``) at optimizer step
``STEP``: ``KILL`` right after that step's periodic checkpoint is written, as a cluster
ends a job (no handler runs, only the files on disk remain); ``TERM`` as that step's batch
ends, as a scheduler announces a preemption."""

import os
import signal
import sys

from xmodal.cli import main
from xmodal.engine.module import LastCheckpoint

SIGNAL, STEP = getattr(signal, f"SIG{sys.argv[1]}"), int(sys.argv[2])
_save, _batch_end = LastCheckpoint._save, LastCheckpoint.on_train_batch_end


def _save_then_die(self, trainer) -> None:
    _save(self, trainer)
    if SIGNAL == signal.SIGKILL and trainer.global_step == STEP:
        os.kill(os.getpid(), signal.SIGKILL)


def _batch_end_then_term(self, trainer, *args) -> None:
    _batch_end(self, trainer, *args)
    if SIGNAL == signal.SIGTERM and trainer.global_step == STEP:
        os.kill(os.getpid(), signal.SIGTERM)


LastCheckpoint._save = _save_then_die
LastCheckpoint.on_train_batch_end = _batch_end_then_term
sys.exit(main(sys.argv[3:]))
