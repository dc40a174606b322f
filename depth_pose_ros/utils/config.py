"""Typed configuration: YAML -> nested dataclasses, with unknown keys rejected.

Every configurable object of the project (networks, two-view geometry, estimator, training) is a
dataclass whose field defaults are the one place defaults are declared. YAML files and command-line
``key=value`` overrides only *change* fields; a misspelt key is an error naming the full dotted path,
so a typo can never silently fall back to a default. A key that was renamed (``RENAMED``) is an error
naming its new name: no alias keeps an old name working.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union

import yaml

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")  # a dataclass type


class ConfigError(ValueError):
    """A configuration value or key is invalid."""


#: Renamed configuration keys, by full dotted name: old -> new. A config (YAML file, ``--set``, node
#: parameter) naming an old key fails with an error naming the new one (``from_dict``; the node's parameter
#: check reads :func:`renamed_key` too); the old name is not accepted as an alias.
RENAMED: dict[str, str] = {
    # EstimatorConfig / node parameter: the two-view geometry image as a fraction of the camera image
    "pose.scale": "pose.image_fraction",
    # TrainConfig: the geometry teacher's image size relative to the training source's size
    "data.teacher.scale": "data.teacher.size_factor",
}


def renamed_key(key: str) -> str | None:
    """The new dotted name of a renamed ``key`` (``RENAMED``), else None. ``key`` may carry a prefix (a config
    nested in another): ``x.pose.scale`` -> ``x.pose.image_fraction``."""
    for old, new in RENAMED.items():
        if key == old or key.endswith("." + old):
            return key[: len(key) - len(old)] + new
    return None


def renamed_message(key: str) -> str | None:
    """``"<key> was renamed <new key>"`` for a renamed ``key``, else None."""
    new = renamed_key(key)
    return None if new is None else f"{key} was renamed {new}"


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _strip_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _convert(tp: Any, value: Any, path: str) -> Any:
    tp = _strip_optional(tp)
    if value is None:
        return None
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, path)
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    if typing.get_origin(tp) is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path}: {value!r} is not one of {list(allowed)}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{path}: expected a boolean, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: expected a number, got {value!r}") from exc
    if tp is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: expected an integer, got {value!r}") from exc
    if tp is str:
        return str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, path: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) mapping; unknown keys raise ConfigError."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f" in {path}" if path else ""
        problems, rest = [], []
        for k in unknown:
            moved = renamed_message(f"{path}.{k}" if path else k)
            if moved is None:
                rest.append(k)
            else:
                problems.append(moved)
        if rest:
            problems.append(f"unknown config key(s){where}: {', '.join(rest)} (valid: {', '.join(sorted(names))})")
        raise ConfigError("; ".join(problems))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in data.items():
        where = f"{path}.{k}" if path else k
        if isinstance(v, dict) and _is_dataclass_type(_strip_optional(hints[k])):
            # a partial mapping overrides the field's *own* default (e.g. a default_factory with other
            # settings than the nested class's defaults), never resets the keys it does not name
            default = _field_default(fields[k])
            if default is not None:
                v = {**to_dict(default), **v}
        kwargs[k] = _convert(hints[k], v, where)
    return cls(**kwargs)


def _field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    if f.default is not dataclasses.MISSING:
        return f.default
    return None


def to_dict(obj: Any) -> Any:
    """Plain (YAML-safe) dict of a dataclass tree; tuples become lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def dict_diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """``key: a -> b`` for every dotted key whose value differs between two nested mappings.

    Used to say exactly which fields make two configs (e.g. a checkpoint's and the requested one)
    incompatible, instead of only that they differ.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += dict_diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} -> {b!r}"]


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update`` recursively (nested mappings merge key by key); a new mapping."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a","b","c"], yaml-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    return key.split("."), yaml.safe_load(raw) if raw != "" else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys) to a nested mapping, returning a new mapping."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {k} is not a mapping")
        node[keys[-1]] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Defaults of ``cls``, updated by the YAML file, updated by ``key=value`` overrides."""
    data = load_yaml(path) if path else {}
    return from_dict(cls, apply_overrides(data, overrides or []))
