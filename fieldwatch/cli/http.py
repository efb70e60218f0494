"""The web pages' and API's listener for `up` and `collector run`: address, TLS, and the
warning when passwords would cross a network in clear (docs/desk.md, "TLS and proxies")."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from fieldwatch.cli.common import CommandLineError

if TYPE_CHECKING:
    from fieldwatch.collector.web.api.app import HttpServer

log = logging.getLogger(__name__)


def add_http_options(p: argparse.ArgumentParser) -> None:
    """--http-host and TLS, for `up` and `collector run` (docs/desk.md, "TLS and proxies")."""
    p.add_argument("--http-host", metavar="ADDR",
                   help="address the web pages and API listen on (default 127.0.0.1; "
                        "0.0.0.0 or :: for every interface)")
    p.add_argument("--tls-cert", type=Path, metavar="PEM",
                   help="serve HTTPS with this certificate (chain); needs --tls-key")
    p.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's private key")


def serve_http(app: object, host: str, port: int, cert: Path | None, key: Path | None
               ) -> HttpServer:
    """The HTTP(S) server, its problems as one-line errors; a plain-HTTP listener reachable
    from other machines is warned about (passwords would cross the network in clear)."""
    from fieldwatch.collector.web.api.app import HttpServer

    if (cert is None) != (key is None):
        raise CommandLineError("TLS needs both --tls-cert and --tls-key")
    try:
        server = HttpServer(app, host=host, port=port,  # type: ignore[arg-type]
                            tls_cert=str(cert) if cert else None,
                            tls_key=str(key) if key else None)
    except ssl.SSLError as exc:
        raise CommandLineError(f"cannot use {cert} and {key} for TLS: {exc}") from None
    except FileNotFoundError as exc:
        raise CommandLineError(f"TLS: no file {exc.filename}") from None
    except OSError as exc:
        raise CommandLineError(f"cannot listen on {host}:{port} for the web page and API: "
                               f"{exc.strerror or exc}; choose another port with --http-port "
                               "PORT, or --http-port 0 for a free one") from None
    if cert is None and not is_loopback(host):
        log.warning("serving plain HTTP on %s: passwords and session cookies cross the network "
                    "in clear; give --tls-cert/--tls-key or put a TLS proxy in front "
                    "(docs/desk.md)", host)
    return server


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
