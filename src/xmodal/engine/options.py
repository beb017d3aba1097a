"""A task's ``xmodal predict`` options, declared once as a dataclass.

The CLI builds its flags (and their help) from the fields, and :func:`xmodal.engine.predict`
checks keyword options against the same fields, so no default is written twice::

    @dataclass
    class PredictOptions:
        n: int = option(8, "images per caption", flags=("-n",))
        text: list[str] | None = option(None, "a text query", metavar="TEXT")
        tags: bool = option(False, "also give each image's top words")

A field named ``top_k`` becomes ``--top-k``; ``list[...]`` fields repeat (``--text a
--text b``, and their help says so); ``bool`` fields are switches; ``flags`` adds short
forms; the help shows each other option's default.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from xmodal.errors import ParameterError

__all__ = ["add_option_arguments", "check_options", "option", "option_defaults"]


def option(default: Any, help: str, *, flags: tuple[str, ...] = (), metavar: str | None = None):
    """A predict-option field: its ``default``, ``help`` text and extra ``flags``."""
    meta = {"help": help, "flags": tuple(flags), "metavar": metavar}
    return dataclasses.field(default=default, metadata=meta)


def _kind(tp) -> tuple[type, bool]:
    """(the item type, whether the option repeats) of a field annotation."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (list, tuple):
        return (args[0] if args else str), True
    if args:  # X | None
        return _kind(args[0])
    return tp, False


def add_option_arguments(parser, options_cls: type | None) -> None:
    """Declare the fields of ``options_cls`` on the argparse ``parser`` (no-op for None)."""
    if options_cls is None:
        return
    hints = typing.get_type_hints(options_cls)
    for f in dataclasses.fields(options_cls):
        meta = f.metadata
        item, repeats = _kind(hints[f.name])
        names = list(meta.get("flags", ()))
        if len(f.name) > 1 or not names:  # `n` with flags=("-n",) needs no `--n`
            names.append("--" + f.name.replace("_", "-"))
        help_text = meta.get("help", "")
        if item is bool and not repeats:
            parser.add_argument(*names, dest=f.name, action="store_true", help=help_text)
            continue
        if repeats:
            help_text = f"{help_text}; repeatable"
        elif f.default is not None:
            help_text = f"{help_text} (default {f.default})"
        parser.add_argument(
            *names,
            dest=f.name,
            type=item,
            action="append" if repeats else "store",
            default=f.default,
            metavar=meta.get("metavar") or f.name.upper(),
            help=help_text,
        )


def option_defaults(options_cls: type | None) -> dict[str, Any]:
    """Each field's default, by name."""
    if options_cls is None:
        return {}
    return {f.name: f.default for f in dataclasses.fields(options_cls)}


def check_options(options_cls: type | None, task: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the defaults of the fields not given; an unknown name raises
    ParameterError listing the task's options."""
    known = option_defaults(options_cls)
    unknown = sorted(set(options) - set(known))
    if unknown:
        valid = ", ".join(sorted(known)) or "none"
        raise ParameterError(
            f"predict {task} has no option {', '.join(map(repr, unknown))}. Its options: {valid}"
        )
    return {**known, **options}
