"""`redact_url`: a URL as it may be shown — in logs, on ticket timelines, in error messages.

Webhook URLs often *are* the credential: a password in the user part, a `?token=` in the
query, or a key as a path segment (Slack, Teams and Discord hooks). Shown, a URL keeps its
scheme, host, port and the shape of its path; the user part, every query value, the fragment
and each path segment that looks like a key become `***`.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import SplitResult, parse_qsl, urlsplit

HIDDEN = "***"
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~+=%@]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,31}")


def _looks_secret(segment: str) -> bool:
    """Runs of token characters: from 16 characters when letters mix with digits or upper with
    lower case, any from 32. Words (`services`, `escalation-hook`) and numeric ids stay; keys
    and UUIDs go (so may a long CamelCase word: over-hiding is the safe side)."""
    if not _TOKEN.fullmatch(segment):
        return False
    digits = any(c.isdigit() for c in segment)
    letters = any(c.isalpha() for c in segment)
    cases = any(c.isupper() for c in segment) and any(c.islower() for c in segment)
    return len(segment) >= 32 or (len(segment) >= 16 and (cases or (digits and letters)))


def redact_url(url: str) -> str:
    """`url` with its credentials replaced by `***`; never raises (a URL that does not parse
    is shown as `<unparseable URL>`)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
        host = parts.hostname or ""
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{HIDDEN}@" if "@" in parts.netloc else "") + host + (
        f":{port}" if port is not None else "")
    path = "/".join(HIDDEN if _looks_secret(s) else s for s in parts.path.split("/"))
    query = "&".join(  # names stay when they are plain names (`?SECRET` is a name too)
        f"{name if _NAME.fullmatch(name) and not _looks_secret(name) else HIDDEN}={HIDDEN}"
        for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return SplitResult(parts.scheme, netloc, path, query, "").geturl()


def redact_in(text: str, url: str) -> str:
    """`text` (an error message, say) with every copy of `url` in it redacted."""
    return text.replace(url, redact_url(url)) if url else text


class RedactUrls(logging.Filter):
    """Redacts the URLs among a log record's arguments: httpx logs every request's full URL
    (`HTTP Request: POST https://…`) at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_shown(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _shown(v) for k, v in record.args.items()}
        return True


def _shown(arg: object) -> object:
    text = str(arg) if type(arg).__name__ == "URL" else arg  # httpx.URL, without importing it
    if isinstance(text, str) and text.startswith(("http://", "https://")):
        return redact_url(text)
    return arg


def redact_logged_urls(loggers: tuple[str, ...] = ("httpx",)) -> None:
    """Put RedactUrls on the loggers of the HTTP libraries (once; the CLI calls it)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactUrls) for f in logger.filters):
            logger.addFilter(RedactUrls())
