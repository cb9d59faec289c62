"""pydantic's complaints about params.yaml as one line that names the key as params.yaml spells
it, and says what the key must be (`nmt.config`)."""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import BaseModel
from pydantic_core import ErrorDetails


class Invalid(ValueError):
    """A rule on several keys broken; `key` names the one reported (None: the checked one)."""

    def __init__(self, rule: str, value: object, key: str | None = None):
        super().__init__(rule)
        self.rule, self.value, self.key = rule, value, key


def choices(expected: str) -> str:
    return ", ".join(re.findall(r"'([^']*)'", expected))


def one_line(error: ErrorDetails, cls: type[BaseModel], name: Callable[[str], str]) -> str:
    """One line for pydantic's first complaint, naming the key as params.yaml spells it."""
    loc, kind, value = [str(part) for part in error["loc"]], error["type"], error.get("input")
    ctx = error.get("ctx", {})
    invalid = ctx.get("error")
    if isinstance(invalid, Invalid):
        loc, rule, value = loc + ([invalid.key] if invalid.key else []), invalid.rule, invalid.value
    if kind == "extra_forbidden":
        section = cls
        for part in loc[:-1]:  # a nested section's class
            inner = section.model_fields[part].annotation
            assert isinstance(inner, type) and issubclass(inner, BaseModel)
            section = inner
        allowed = ", ".join(section.model_fields)
        return f"params.yaml: unknown key '{name('.'.join(loc))}' (allowed: {allowed})"
    key = name(".".join(loc)) if loc else "the top level"
    if kind == "missing":
        return f"params.yaml: missing key '{key}'"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<="}
    if kind in bounds:
        rule = f"{bounds[kind]} {next(iter(ctx.values())):g}"
    elif kind == "literal_error":
        rule = f"one of {choices(ctx['expected'])}"
    elif kind == "too_short":
        rule = "a non-empty " + ("mapping" if isinstance(value, dict) else "list")
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        rule = "a mapping"
    elif kind in ("tuple_type", "list_type"):
        rule = "a list"
    elif kind.endswith("_type"):
        rule = "of type " + {"string": "str"}.get(kind[:-5], kind[:-5])
    elif not isinstance(invalid, Invalid):
        rule = error["msg"]
    return f"params.yaml: {key} must be {rule}, got {value!r}"
