"""msgspec config structs: msgspec's error paths read back, every problem found in one run."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldwatch.durations import Duration
from fieldwatch.errors import ConfigError
from fieldwatch.structs import Id, Secret, Strict, _path, check, convert


class Inner(Strict):
    name: Id
    every: Duration = 60.0
    mode: Literal["fast", "slow"] = "fast"

    def __post_init__(self) -> None:
        if self.name == "bad":
            raise ValueError("name: 'bad' is taken")


class Outer(Strict):
    items: list[Inner] = []
    files: dict[str, Path] = {}
    token: Secret | None = None


_keys = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


@given(st.lists(st.one_of(_keys, st.integers(0, 10_000)), max_size=8))
def test_error_paths_read_back(path: list[str | int]) -> None:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    assert _path(text) == tuple(path)


def test_a_dict_key_msgspec_does_not_name_ends_the_path() -> None:
    assert _path(".files[...].x") == ("files",)


def test_every_problem_is_found_in_one_run_without_follow_on_noise() -> None:
    result, issues = check(Outer, {
        "items": [{"name": "a/b"}, {"name": "ok", "every": "soon"}, {"name": "bad"},
                  {"name": "x", "mode": "warp"}],
        "files": {"log": 7}, "extra": 1})
    assert result is None
    assert [(path, msg) for path, msg, _ in issues] == [
        (("items", 0, "name"), "must be 1-128 characters without '/', '+' or '#'"),
        (("items", 1, "every"), "expected a duration such as 30s, 5m, 1h or 7d, got 'soon'"),
        (("items", 2, "name"), "'bad' is taken"),
        (("items", 3, "mode"), "'warp' is not one of: fast, slow"),
        (("files",), "expected a string, got an integer"),
        (("extra",), "unknown key (check spelling; see the commented example config)"),
    ]
    assert issues[-1][2]  # unknown keys point at the key itself


def test_values_come_out_typed_and_secrets_stay_hidden() -> None:
    out = convert(Outer, {"items": [{"name": "a", "every": "5m"}], "files": {"log": "/x"},
                          "token": "s3cret"})
    assert out.items[0].every == 300.0 and out.files["log"] == Path("/x")
    assert out.token is not None and out.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(out) and "s3cret" not in str(out.token)
    with pytest.raises(AttributeError):  # frozen after loading
        out.token = None  # type: ignore[misc]


def test_convert_raises_a_located_config_error() -> None:
    with pytest.raises(ConfigError, match=r"<config>:1:1: items.0.name: required key"):
        convert(Outer, {"items": [{}]})


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(["name", "every", "mode", "x"]), inner,
                                       max_size=3), max_leaves=12)


@given(st.dictionaries(st.sampled_from(["items", "files", "token", "extra"]), _json,
                       max_size=4))
def test_any_document_gives_a_struct_or_located_issues(doc: dict[str, object]) -> None:
    result, issues = check(Outer, doc)
    assert (result is None) == bool(issues)
    for path, message, _ in issues:
        assert path and path[0] in doc and message
