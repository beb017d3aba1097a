"""One module per task: only what is particular to it (config fields, the loss of a batch,
what it evaluates, which figures it draws, what predict does).

Tasks are registered by name in :mod:`xmodal.registry` and imported on first use; the
skeleton they share (data sources, optimizer, run folders, figures, predict flags) is the
engine's (:mod:`xmodal.engine`). See docs/architecture.md, "Adding a task".
"""
