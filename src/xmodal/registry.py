"""The task registry: short names (``caption``, ``vqa``, ...) to :class:`~xmodal.engine.Task`
classes.

A task is registered as metadata plus a lazy entry string ``"module:Class"``, so listing
tasks (``xmodal tasks``) imports nothing heavy; the class is imported the first time
:func:`get_task` asks for it.

    >>> from xmodal.registry import list_tasks
    >>> [t.name for t in list_tasks()][:1]
    ['caption']
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass

from xmodal.errors import ParameterError

__all__ = ["TaskInfo", "get_task", "list_tasks", "register_task"]


@dataclass(frozen=True)
class TaskInfo:
    """What ``xmodal tasks`` shows about a task, known without importing it."""

    name: str
    family: str
    data: str
    summary: str


@dataclass
class _Entry:
    info: TaskInfo
    entry: str | None  # "module:Class", imported on first use
    cls: type | None = None


# Built-in tasks, spelled out so that listing them imports no model code.
_BUILTIN: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "backbone",
        "representations",
        "world",
        "Visual backbone pretrained on the world's objects under each map position",
        "xmodal.tasks.backbone:BackboneTask",
    ),
    (
        "caption",
        "translation",
        "world",
        "Image captioning: Show and Tell / Show, Attend and Tell (attention LSTM)",
        "xmodal.tasks.caption:CaptionTask",
    ),
    (
        "gpt",
        "representations",
        "world",
        "GPT: a causal transformer language model of characters or words (any text file)",
        "xmodal.tasks.gpt:GPTTask",
    ),
    (
        "localize",
        "referencing",
        "world",
        "Sound source localization: where in the picture the sound comes from",
        "xmodal.tasks.localize:LocalizeTask",
    ),
    (
        "retrieval",
        "matching",
        "world",
        "Image-text retrieval: joint embedding (VSE++ hinge, triplet or InfoNCE)",
        "xmodal.tasks.retrieval:RetrievalTask",
    ),
    (
        "recipe",
        "matching",
        "world",
        "im2recipe: image-recipe retrieval (cosine loss + semantic regularisation)",
        "xmodal.tasks.recipe:RecipeTask",
    ),
    (
        "scene-sound",
        "matching",
        "world",
        "Scene recognition by sound: image and audio in one space (L3 AVC or InfoNCE)",
        "xmodal.tasks.scene_sound:SceneSoundTask",
    ),
    (
        "soundnet",
        "matching",
        "world",
        "SoundNet: a raw-waveform sound network taught by a visual teacher (KL)",
        "xmodal.tasks.soundnet:SoundNetTask",
    ),
    (
        "text2image",
        "translation",
        "world",
        "Text-to-image: conditional GAN (GAN-INT-CLS, matching-aware + interpolation)",
        "xmodal.tasks.text2image:Text2ImageTask",
    ),
    (
        "word2vec",
        "representations",
        "world",
        "word2vec: skip-gram word vectors with negative sampling (any text file)",
        "xmodal.tasks.word2vec:Word2VecTask",
    ),
    (
        "vqa",
        "referencing",
        "world",
        "Visual question answering: stacked attention (SAN) or LSTM Q + norm I fusion",
        "xmodal.tasks.vqa:VQATask",
    ),
)

_REGISTRY: dict[str, _Entry] = {
    name: _Entry(TaskInfo(name, family, data, summary), entry)
    for name, family, data, summary, entry in _BUILTIN
}


def _check_name(name) -> str:
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ParameterError(f"a task name must be a non-empty word. Found: {name!r}")
    return name


def _check_entry(entry: str) -> str:
    module, sep, attr = entry.partition(":")
    if not sep or not module or not attr:
        raise ParameterError(f"a task entry must read 'module:Class'. Found: {entry!r}")
    return entry


def _import_entry(name: str, entry: str) -> type:
    module_name, _, attr = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and module_name.startswith(err.name):
            raise ParameterError(
                f"task {name!r} is registered as {entry!r}, but module {err.name!r} "
                "cannot be found (is it installed?)"
            ) from err
        raise  # a missing dependency inside the module: its own message says which
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError as err:
        raise ParameterError(
            f"task {name!r} is registered as {entry!r}, but {module_name} has no {attr!r}"
        ) from err
    return obj


def _check_task_class(cls, where: str) -> type:
    from xmodal.engine.task import Task

    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ParameterError(f"{where} must be a subclass of xmodal.engine.Task. Found: {cls!r}")
    return cls


def register_task(
    entry_or_class,
    *,
    name: str | None = None,
    family: str | None = None,
    data: str | None = None,
    summary: str | None = None,
    overwrite: bool = False,
) -> TaskInfo:
    """Register a task class, or a lazy ``"module:Class"`` entry, under a short name.

    With a class, the metadata defaults to its class attributes (``name``, ``family``,
    ``default_data``, ``summary``). With an entry string, ``name`` is required unless the
    class may be imported now to read it. Registering a taken name raises ParameterError
    unless ``overwrite=True``.

        >>> register_task("mypkg.tasks:SpeechTask", name="speech", family="translation",
        ...               summary="my speech task")  # doctest: +SKIP
    """
    cls = None
    entry = None
    if isinstance(entry_or_class, str):
        entry = _check_entry(entry_or_class)
        if name is None or family is None or data is None or summary is None:
            cls = _check_task_class(_import_entry(name or entry, entry), entry)
    else:
        cls = _check_task_class(entry_or_class, "entry_or_class")

    def meta(given, attr, default=""):
        if given is not None:
            return given
        return getattr(cls, attr, default) if cls is not None else default

    name = _check_name(meta(name, "name"))
    info = TaskInfo(
        name=name,
        family=str(meta(family, "family")),
        data=str(meta(data, "default_data", "world")),
        summary=str(meta(summary, "summary")),
    )
    if name in _REGISTRY and not overwrite:
        raise ParameterError(
            f"task {name!r} is already registered; pass overwrite=True to replace it"
        )
    _REGISTRY[name] = _Entry(info, entry, cls)
    return info


def unregister_task(name: str) -> None:
    """Remove a task (tests use it to undo :func:`register_task`); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def _unknown(name) -> ParameterError:
    known = sorted(_REGISTRY)
    hint = difflib.get_close_matches(str(name), known, n=1)
    did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
    return ParameterError(f"unknown task {name!r}{did_you_mean}. Known tasks: {', '.join(known)}")


def get_task(name: str) -> type:
    """The Task class registered under ``name``, imported on first use.

    Raises ParameterError for an unknown name, listing the known ones.
    """
    entry = _REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        raise _unknown(name)
    if entry.cls is None:
        entry.cls = _check_task_class(_import_entry(name, entry.entry), entry.entry)
    return entry.cls


def list_tasks() -> list[TaskInfo]:
    """Every registered task, by name."""
    return [_REGISTRY[name].info for name in sorted(_REGISTRY)]
