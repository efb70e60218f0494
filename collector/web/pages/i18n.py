"""Languages of the desk: English (the templates' own text) and Simplified Chinese, chosen per
user (`User.language`).

Catalogs are gettext `.po` files under collector/web/i18n/, read at start-up by Babel and turned
into gettext translations in memory (`load`): the repository keeps only the text a translator
edits, no compiled `.mo` that can drift from it. Updating them (docs/desk.md, "Translating"):

    pybabel extract -F collector/web/i18n/babel.cfg -o collector/web/i18n/messages.pot collector/web
    pybabel update -i collector/web/i18n/messages.pot -o collector/web/i18n/zh.po -l zh_Hans_CN

tests/web/test_pages_i18n.py fails when a message in the templates has no Chinese translation.
"""

from __future__ import annotations

import functools
import gettext
import importlib.resources
import io

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = {"en": "English", "zh": "简体中文"}  # code → its own name, for the switcher
LOCALES = {"en": "en", "zh": "zh_Hans_CN"}  # Babel locales: dates, numbers, durations
HTML_LANG = {"en": "en", "zh": "zh-Hans"}
CATALOGS = {"zh": "zh.po"}  # English is the source text: no catalog


def language(requested: str | None) -> str:
    """A supported language for what a user's profile says: `zh`, `zh-CN`, `zh_Hans`… → zh;
    anything else → en."""
    code = (requested or "").strip().lower().replace("_", "-")
    return "zh" if code == "zh" or code.startswith("zh-") else "en"


def catalog_text(lang: str) -> str:
    name = CATALOGS[lang]
    return (importlib.resources.files("fieldwatch.collector.web") / "i18n" / name).read_text(
        encoding="utf-8")


@functools.cache
def load(lang: str) -> gettext.NullTranslations:
    """The translations of `lang` (the .po compiled in memory, once per process)."""
    if lang not in CATALOGS:
        return gettext.NullTranslations()
    catalog = read_po(io.StringIO(catalog_text(lang)), locale=LOCALES[lang])
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(fp=buf)


@functools.cache
def locale(lang: str) -> Locale:
    return Locale.parse(LOCALES.get(lang, "en"))
