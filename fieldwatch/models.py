"""pydantic on the collector side: config models, and located errors for YAML they validate.

The agent never imports this module (it would pull in pydantic, issue 3); its config sections
are msgspec structs (`fieldwatch.config.Strict`), which a model here can hold as a field.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError, core_schema

from fieldwatch.errors import LocatedError, Problem
from fieldwatch.structs import check, describe
from fieldwatch.yamlmarks import Loaded, PathKey

M = TypeVar("M", bound=BaseModel)
_STRUCT_ERROR = "config_struct"


class StrictModel(BaseModel):
    """A collector-side config model: unknown keys are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def struct_schema(struct: type[msgspec.Struct]) -> core_schema.CoreSchema:
    """Validate a msgspec config struct inside a pydantic model, keeping every located issue."""

    def validate(value: Any) -> Any:
        if isinstance(value, struct):
            return value
        result, issues = check(struct, value)
        if result is None:
            raise PydanticCustomError(_STRUCT_ERROR, "{first}",
                                      {"first": issues[0][1], "issues": issues})
        return result

    return core_schema.no_info_plain_validator_function(validate)


def _describe(err: dict[str, Any]) -> str:
    loc = ".".join(str(x) for x in err["loc"]) or "document"
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown key (check spelling; see the commented example config)"
    if err["type"] == "missing":
        return f"{loc}: required key is missing"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return f"{loc}: {msg}"


def validation_problems(exc: ValidationError, doc: Loaded,
                        prefix: PathKey = ()) -> list[Problem]:
    """Turn a pydantic error into located problems, one per failing value."""
    out = []
    for err in exc.errors(include_url=False):
        # pydantic adds union-member and validator names to loc; keep only real data keys
        loc = [p for p in err["loc"] if isinstance(p, int) or not str(p).startswith(
            ("function-", "tagged-union", "union["))]
        if err["type"] == _STRUCT_ERROR:  # a msgspec struct inside: its own issues, located
            out += [doc.problem((*prefix, *loc, *path), describe((*loc, *path), message), at_key)
                    for path, message, at_key in err["ctx"]["issues"]]
            continue
        out.append(doc.problem((*prefix, *loc), _describe({**err, "loc": loc}),
                               at_key=err["type"] == "extra_forbidden"))
    return out


def validate(model: type[M], doc: Loaded, data: Any = None, prefix: PathKey = (),
             error: type[LocatedError] = LocatedError) -> M:
    """Validate `data` (default: the whole document) into `model`, or raise located problems."""
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as exc:
        raise error(validation_problems(exc, doc, prefix)) from None
