"""Languages: every message of the templates and pages has its Chinese translation, with the
same placeholders; the catalogs load; a user's language code is understood."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fieldwatch.collector.web.pages import i18n

WEB = Path(i18n.__file__).resolve().parents[1]  # collector/web
METHODS = [("**/pages/**.py", "python"), ("**/templates/**.html", "jinja2")]
OPTIONS = {"**/templates/**.html": {"trim_blocks": "True", "lstrip_blocks": "True"}}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> set[str | tuple[str, ...]]:
    out: set[str | tuple[str, ...]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(WEB), METHODS, OPTIONS):
        out.add(message if isinstance(message, str) else tuple(message))
    return out


def test_every_message_has_a_chinese_translation_with_the_same_placeholders() -> None:
    catalog = read_po(io.StringIO(i18n.catalog_text("zh")))
    have = {(m.id if isinstance(m.id, str) else tuple(m.id)): m for m in catalog if m.id}
    wanted = extracted()
    missing = sorted(map(str, wanted - set(have)))
    assert not missing, f"run pybabel extract/update (collector/web/pages/i18n.py): {missing}"
    for key in wanted:
        m = have[key]
        assert not m.fuzzy, key
        strings = [m.string] if isinstance(m.string, str) else list(m.string)
        assert all(strings), f"no translation for {key!r}"
        ids = [key] if isinstance(key, str) else list(key)
        for s in strings:
            assert set(PLACEHOLDER.findall(s)) == set(PLACEHOLDER.findall(ids[-1])), key


def test_the_catalog_loads_and_translates() -> None:
    zh = i18n.load("zh")
    assert zh.gettext("Ticket queue") == "工单队列"
    assert zh.ngettext("%(num)d ticket", "%(num)d tickets", 3) == "%(num)d 张工单"
    assert i18n.load("en").gettext("Ticket queue") == "Ticket queue"


def test_the_catalog_template_is_current() -> None:
    """messages.pot lists what the code says (a stale template misleads translators)."""
    with (WEB / "i18n" / "messages.pot").open("rb") as f:
        pot = read_po(f)
    assert {(m.id if isinstance(m.id, str) else tuple(m.id)) for m in pot if m.id} == extracted()


@pytest.mark.parametrize(("code", "lang"), [("zh", "zh"), ("zh-CN", "zh"), ("zh_Hans", "zh"),
                                            ("ZH-hant-TW", "zh"), ("en", "en"), ("en-GB", "en"),
                                            ("de", "en"), ("", "en"), (None, "en"),
                                            ("zhx", "en")])
def test_language_codes(code: str | None, lang: str) -> None:
    assert i18n.language(code) == lang
