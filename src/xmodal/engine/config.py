"""Typed configs: dataclasses with defaults, read from YAML and ``key=value`` overrides.

A task's config is a dataclass with ``seed: int``, ``trainer: TrainerConfig`` and its own
nested dataclasses. Values are layered: the dataclass defaults, then a YAML file, then
dotted overrides from the command line (``trainer.max_epochs=3 model.hidden=256``), each
override's value read as YAML (``3`` is an int, ``true`` a bool, ``null`` None, ``[1, 2]``
a list; anything else stays a string). Every key and type is checked against the
dataclass fields, and a mistake names the dotted key:

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Config:
    ...     seed: int = 0
    ...     trainer: TrainerConfig = field(default_factory=TrainerConfig)
    >>> load_config(Config, overrides=["trainer.max_epochs=3"]).trainer.max_epochs
    3
    >>> load_config(Config, overrides=["trainer.max_epochs=abc"])
    Traceback (most recent call last):
    ...
    xmodal.errors.ParameterError: config key 'trainer.max_epochs' must be int. Found: 'abc' (str)

This module imports neither torch nor Lightning, so tasks can import it cheaply.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from xmodal.errors import DataError, ParameterError

__all__ = [
    "TrainerConfig",
    "config_from_dict",
    "config_to_dict",
    "format_config",
    "load_config",
    "parse_overrides",
]

# The precisions Lightning accepts (lightning.fabric.connector._PRECISION_INPUT_STR),
# spelled out so that a typo is caught before the Trainer is built.
PRECISIONS = (
    "64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true",
    "transformer-engine", "transformer-engine-float16", "64", "32", "16", "bf16",
)  # fmt: skip
_MAX_TIME = re.compile(r"^\d+:\d{1,2}:\d{1,2}:\d{1,2}$")


@dataclass
class TrainerConfig:
    """Options of ``lightning.pytorch.Trainer`` (one field each) plus the engine's own.

    Scale-out is set here: ``devices``, ``strategy`` (``ddp``, ``fsdp``, ...),
    ``num_nodes`` and ``precision`` (``bf16-mixed``, ...) go to the Trainer unchanged; see
    docs/scale-out.md. ``checkpoint_every_n_steps`` is the engine's: ``last.ckpt`` is
    rewritten every that many optimizer steps (0: only at epoch ends), so a killed run
    loses little.
    """

    max_epochs: int = 10
    max_steps: int = -1
    max_time: str | None = None  # "DD:HH:MM:SS"
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    gradient_clip_val: float | None = None
    log_every_n_steps: int = 20
    limit_train_batches: float | int = 1.0
    limit_val_batches: float | int = 1.0
    check_val_every_n_epoch: int = 1
    num_sanity_val_steps: int = 0
    enable_progress_bar: bool = True
    enable_model_summary: bool = True
    deterministic: bool = False
    checkpoint_every_n_steps: int = 200

    def __post_init__(self) -> None:
        def at_least(name, minimum):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ParameterError(
                    f"config key 'trainer.{name}' must be an integer >= {minimum}. Found: {value!r}"
                )

        at_least("max_epochs", -1)
        at_least("max_steps", -1)
        at_least("num_nodes", 1)
        at_least("log_every_n_steps", 1)
        at_least("check_val_every_n_epoch", 1)
        at_least("num_sanity_val_steps", -1)
        at_least("checkpoint_every_n_steps", 0)
        for name in ("enable_progress_bar", "enable_model_summary", "deterministic"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(
                    f"config key 'trainer.{name}' must be True or False. "
                    f"Found: {getattr(self, name)!r}"
                )
        if self.max_time is not None and not _MAX_TIME.match(str(self.max_time)):
            raise ParameterError(
                "config key 'trainer.max_time' must read DD:HH:MM:SS (e.g. 00:12:00:00). "
                f"Found: {self.max_time!r}"
            )
        if self.precision not in PRECISIONS:
            raise ParameterError(
                f"config key 'trainer.precision' must be one of {', '.join(PRECISIONS)}. "
                f"Found: {self.precision!r}"
            )
        if isinstance(self.devices, int) and (self.devices == 0 or self.devices < -1):
            raise ParameterError(
                "config key 'trainer.devices' must be >= 1, -1 (all), 'auto' or a list "
                f"such as '0,1'. Found: {self.devices!r}"
            )
        for name in ("limit_train_batches", "limit_val_batches"):
            value = getattr(self, name)
            if value < 0 or (isinstance(value, float) and value > 1.0):
                raise ParameterError(
                    f"config key 'trainer.{name}' must be a fraction in [0, 1] or a number "
                    f"of batches >= 0. Found: {value!r}"
                )
        if self.gradient_clip_val is not None and not self.gradient_clip_val >= 0:
            raise ParameterError(
                "config key 'trainer.gradient_clip_val' must be >= 0 or null. "
                f"Found: {self.gradient_clip_val!r}"
            )

    def trainer_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``lightning.pytorch.Trainer`` (engine-only fields left out)."""
        kwargs = config_to_dict(self)
        kwargs.pop("checkpoint_every_n_steps")
        for name in ("limit_train_batches", "limit_val_batches"):
            if kwargs[name] == 1.0 and isinstance(kwargs[name], float):
                kwargs[name] = None  # Lightning's default, without its "100% of batches" note
        return kwargs


# ---------------------------------------------------------------------------- to dict


def config_to_dict(cfg) -> dict[str, Any]:
    """A config dataclass as plain YAML/JSON data (tuples become lists, paths strings)."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise ParameterError(f"config must be a dataclass instance. Found: {cfg!r}")
    return {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def format_config(cfg) -> str:
    """The config as YAML, keys in field order (what ``--print-config`` shows)."""
    import yaml

    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)


# ---------------------------------------------------------------------------- from dict


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # Resolves `from __future__ import annotations` strings in the class's own module.
    return typing.get_type_hints(cls)


def _type_name(tp) -> str:
    if tp is type(None):
        return "null"
    if isinstance(tp, type):
        return tp.__name__
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        parts = ["..." if a is Ellipsis else _type_name(a) for a in args]
        return f"{name}[{', '.join(parts)}]"
    return str(tp)


def _found(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def _wrong(key: str, tp, value) -> ParameterError:
    return ParameterError(f"config key '{key}' must be {_type_name(tp)}. Found: {_found(value)}")


# YAML 1.1 reads "1e-3" (no dot) as a string; a float field takes it as the number it means.
_FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _convert(value, tp, key: str):
    """``value`` checked against (and where lossless, converted to) the type ``tp``."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise _wrong(key, tp, value)
        options = [a for a in args if a is not type(None)]
        # An exact match first, so that `float | int` keeps 3 an int and 3.0 a float.
        for option in options:
            if isinstance(option, type) and type(value) is option:
                return value
        for option in options:
            try:
                return _convert(value, option, key)
            except ParameterError:
                continue
        raise _wrong(key, tp, value)

    if origin is Literal:
        for allowed in args:
            if value == allowed and type(value) is type(allowed):
                return allowed
        options = ", ".join(repr(a) for a in args)
        raise ParameterError(f"config key '{key}' must be one of {options}. Found: {_found(value)}")

    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _wrong(key, tp, value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ParameterError(
                f"config key '{key}' must be {_type_name(tp)} ({len(args)} items). "
                f"Found: {_found(value)}"
            )
        if not args:
            return tuple(value)
        pairs = enumerate(zip(value, args, strict=True))
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in pairs)

    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _wrong(key, tp, value)
        item = args[0] if args else Any
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]

    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _wrong(key, tp, value)
        k_tp, v_tp = args if args else (Any, Any)
        return {
            _convert(k, k_tp, f"{key}.{k}"): _convert(v, v_tp, f"{key}.{k}")
            for k, v in value.items()
        }

    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ParameterError(
                f"config key '{key}' must be a mapping of {tp.__name__} fields. "
                f"Found: {_found(value)}"
            )
        return _from_dict(tp, value, key)

    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _wrong(key, tp, value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _wrong(key, tp, value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
            return float(value)
        raise _wrong(key, tp, value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _wrong(key, tp, value)
    if isinstance(tp, type) and issubclass(tp, Path):
        if isinstance(value, (str, Path)):
            return tp(value)
        raise _wrong(key, tp, value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            options = ", ".join(repr(m.value) for m in tp)
            raise ParameterError(
                f"config key '{key}' must be one of {options}. Found: {_found(value)}"
            ) from None
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _wrong(key, tp, value)
    return value  # an annotation we do not understand: taken as it is


def _field_default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _unknown_key(key: str, name: str, valid: list[str]) -> ParameterError:
    where = f"at '{key}'" if key else "at the top level"
    hint = difflib.get_close_matches(name, valid, n=1)
    did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
    dotted = f"{key}.{name}" if key else name
    return ParameterError(
        f"unknown config key '{dotted}'{did_you_mean}. Valid keys {where}: {', '.join(valid)}"
    )


def _from_dict(cls: type, data: Mapping, key: str = ""):
    fields = [f for f in dataclasses.fields(cls) if f.init]
    valid = [f.name for f in fields]
    for name in data:
        if name not in valid:
            raise _unknown_key(key, str(name), valid)
    hints = _hints(cls)
    kwargs = {}
    for f in fields:
        if f.name not in data:
            continue
        dotted = f"{key}.{f.name}" if key else f.name
        tp = hints.get(f.name, Any)
        value = data[f.name]
        if (
            not isinstance(value, Mapping)
            and isinstance(tp, type)
            and dataclasses.is_dataclass(tp)
            and "name" in {g.name for g in dataclasses.fields(tp)}
        ):
            # `data: karpathy` selects a section by its name (`data.name: karpathy`).
            value = {"name": value}
        if (
            isinstance(value, Mapping)
            and isinstance(tp, type)
            and dataclasses.is_dataclass(tp)
            and dataclasses.is_dataclass(default := _field_default(f))
        ):
            # A partial section keeps the field's own defaults for the keys it leaves out
            # (a task's TrainerConfig default may differ from TrainerConfig()).
            value = _merge(config_to_dict(default), value, dotted)
        kwargs[f.name] = _convert(value, tp, dotted)
    missing = [
        f.name for f in fields if f.name not in kwargs and _field_default(f) is dataclasses.MISSING
    ]
    if missing:
        where = f" in '{key}'" if key else ""
        raise ParameterError(
            f"config key(s) {', '.join(missing)} missing{where}; they have no default"
        )
    return cls(**kwargs)


def config_from_dict(cls: type, d: Mapping):
    """Build the config dataclass ``cls`` from plain data, checking every key and type.

    Keys left out keep their defaults; an unknown key raises ParameterError naming the
    dotted key and listing the valid keys at its level; a value of the wrong type raises
    ParameterError like ``config key 'trainer.max_epochs' must be int. Found: 'abc' (str)``.
    Ints are accepted for float fields. The dataclass's own ``__post_init__`` checks run.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ParameterError(f"cls must be a dataclass type. Found: {cls!r}")
    if not isinstance(d, Mapping):
        raise ParameterError(f"a config must be a mapping of keys to values. Found: {_found(d)}")
    return _from_dict(cls, d)


# ---------------------------------------------------------------------------- layers


def _merge(base: dict, update: Mapping, key: str = "") -> dict:
    """``base`` with ``update`` laid over it, mappings merged key by key."""
    out = dict(base)
    for k, v in update.items():
        dotted = f"{key}.{k}" if key else str(k)
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v, dotted)
        else:
            out[k] = v
    return out


def _parse_value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # e.g. "a: b: c" — kept as the string the user typed


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` as the nested mapping ``{"a": {"b": 1}, "c": "x"}``.

    Each value is read as YAML (``3`` → int, ``true`` → bool, ``null`` → None,
    ``[1, 2]`` → list); a value YAML cannot read stays a string. A string given to a
    section names it: ``data=karpathy data.root=imgs`` is ``{"data": {"name": "karpathy",
    "root": "imgs"}}`` (sections with a ``name`` field, such as a task's ``data``).
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    out: dict[str, Any] = {}
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ParameterError(
                f"an override must read key=value (e.g. trainer.max_epochs=3). Found: {item!r}"
            )
        dotted, _, text = item.partition("=")
        dotted = dotted.strip()
        parts = dotted.split(".")
        if not dotted or any(not p for p in parts):
            raise ParameterError(f"override {item!r} has an empty key")
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if isinstance(child, str) and depth == len(parts) - 2 and parts[-1] != "name":
                # `data=karpathy data.root=...`: the string named the section
                child = node[part] = {"name": child}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ParameterError(f"override {item!r}: '{where}' was already set to a value")
            node = child
        value = _parse_value(text)
        if isinstance(value, str) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]]["name"] = value  # `data.root=... data=karpathy`
        else:
            node[parts[-1]] = value
    return out


def _read_yaml(path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"config file {path} does not exist (or is not a file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        detail = " ".join(str(err).split())
        raise DataError(f"{path}: not valid YAML: {detail}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot be read: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: a config file must hold a mapping of keys to values. "
            f"Found: {type(data).__name__}"
        )
    return data


def load_config(cls: type, *, config_file=None, overrides: Iterable[str] = ()):
    """The config ``cls`` from its defaults, a YAML file and ``key=value`` overrides.

    Layers, later wins: ``cls()`` defaults ← ``config_file`` (YAML mapping; may be a
    list of files, applied in order) ← ``overrides``. Raises ParameterError for a missing
    file, an unknown key, a malformed override or a value of the wrong type; DataError for
    a file that is not valid YAML.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ParameterError(f"cls must be a dataclass type. Found: {cls!r}")
    files = [] if config_file is None else config_file
    if isinstance(files, (str, Path)):
        files = [files]
    data: dict[str, Any] = {}
    for path in files:
        data = _merge(data, _read_yaml(path))
    data = _merge(data, parse_overrides(overrides))
    return config_from_dict(cls, data)
