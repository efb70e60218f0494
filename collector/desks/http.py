"""The boundary between httpx and fieldwatch: every adapter sends through `send`.

    connection refused, connect timeout         → DeskUnavailable (not sent)
    read/write timeout, connection dropped      → DeskUnavailable(unclear=True): may have landed
    429                                         → DeskUnavailable(retry_after=Retry-After)
    5xx                                         → DeskUnavailable(unclear=True)
    other 4xx                                   → DeskRejected with the desk's answer
Messages carry the method, host and path only, the path redacted (`redact_url`: a key as a
path segment): never query strings, headers or bodies we sent (they may hold credentials).
"""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from fieldwatch.errors import DeskRejected, DeskUnavailable
from fieldwatch.redact import redact_url

ANSWER_MAX = 500  # characters of the desk's answer kept with a dead letter


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        date = parsedate_to_datetime(response.headers["date"])
    except (KeyError, TypeError, ValueError):
        return None
    return max(0.0, (when - date).total_seconds())


def _what(request: httpx.Request) -> str:
    return f"{request.method} {request.url.host}{urlsplit(redact_url(str(request.url))).path}"


def check(response: httpx.Response) -> httpx.Response:
    """Map a desk's status code to our errors; 2xx and 3xx pass through."""
    status = response.status_code
    if status < 400:
        return response
    what = _what(response.request)
    answer = response.text[:ANSWER_MAX]
    if status == 429:
        raise DeskUnavailable(f"{what}: 429 rate limited", retry_after=retry_after(response))
    if status >= 500:
        raise DeskUnavailable(f"{what}: {status} {answer}", unclear=True)
    raise DeskRejected(f"{what}: {status} {answer}")


def send(client: httpx.Client, request: httpx.Request) -> httpx.Response:
    """Send one request; any failure comes out as DeskUnavailable or DeskRejected."""
    what = _what(request)
    try:
        response = client.send(request)
        response.read()
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise DeskUnavailable(f"{what}: cannot connect ({type(exc).__name__})") from None
    except httpx.PoolTimeout:
        raise DeskUnavailable(f"{what}: no free connection") from None
    except httpx.TimeoutException as exc:
        raise DeskUnavailable(f"{what}: timed out ({type(exc).__name__})", unclear=True) from None
    except httpx.TransportError as exc:
        raise DeskUnavailable(f"{what}: connection lost ({type(exc).__name__})",
                              unclear=True) from None
    return check(response)


def body(response: httpx.Response) -> Any:
    """The JSON answer; a desk answering 2xx with something else is a rejection to look at."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DeskRejected(f"{_what(response.request)}: {response.status_code} answer is not "
                           f"JSON: {response.text[:ANSWER_MAX]}") from None


def field(data: Any, *path: str | int) -> Any:
    """`data[path0][path1]…`, or DeskRejected naming what is missing from the desk's answer."""
    cur = data
    for p in path:
        try:
            cur = cur[p]
        except (KeyError, IndexError, TypeError):
            raise DeskRejected(f"desk answer lacks {'.'.join(map(str, path))}: "
                               f"{json.dumps(data)[:ANSWER_MAX]}") from None
    return cur
