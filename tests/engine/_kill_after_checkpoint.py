"""``python _kill_after_checkpoint.py SIGNAL STEP xmodal-args...``: run the ``xmodal``
command and send this process ``SIGNAL`` (``KILL`` or ``TERM``) at optimizer step
``STEP``: ``KILL`` once that step's batch is over (its periodic checkpoint, if one falls
there, written, its row logged) as the next batch starts, as a cluster ends a job (no
handler runs, only the files on disk remain); ``TERM`` (or ``USR1``) as that step's batch
ends, as a scheduler announces a preemption. ``AUX`` sends SIGKILL at step ``STEP`` of the first
auxiliary fit (``xmodal.engine.fit.fit_steps``: a pre-training before the main fit)."""

import os
import signal
import sys

import xmodal.engine.fit
from xmodal.cli import main
from xmodal.engine.module import LastCheckpoint

AUX = sys.argv[1] == "AUX"
SIGNAL, STEP = getattr(signal, "SIGKILL" if AUX else f"SIG{sys.argv[1]}"), int(sys.argv[2])
_batch_start, _batch_end = LastCheckpoint.on_train_batch_start, LastCheckpoint.on_train_batch_end


def _batch_start_then_die(self, trainer, *args) -> None:
    if SIGNAL == signal.SIGKILL and trainer.global_step == STEP:
        os.kill(os.getpid(), signal.SIGKILL)
    _batch_start(self, trainer, *args)


def _batch_end_then_term(self, trainer, *args) -> None:
    _batch_end(self, trainer, *args)
    if SIGNAL in (signal.SIGTERM, signal.SIGUSR1) and trainer.global_step == STEP:
        os.kill(os.getpid(), SIGNAL)


_fit_steps = xmodal.engine.fit.fit_steps


def _fit_steps_then_die(optimizer, loss_of_step, **kwargs):
    def loss(k):
        if k == STEP:
            os.kill(os.getpid(), signal.SIGKILL)
        return loss_of_step(k)

    return _fit_steps(optimizer, loss, **kwargs)


if AUX:  # before the task's module is imported (by the registry), which imports fit_steps
    xmodal.engine.fit.fit_steps = _fit_steps_then_die
else:
    LastCheckpoint.on_train_batch_start = _batch_start_then_die
    LastCheckpoint.on_train_batch_end = _batch_end_then_term
sys.exit(main(sys.argv[3:]))
