"""`fieldwatch agent enroll`: trade a one-time token for this device's broker credentials and
write a ready agent config.

The exchange is one HTTPS POST to the collector's /api/v1/enroll (collector/enroll/routes.py).
What comes back — broker username and password, the broker's CA, the collector's diagnostics
public key — is written next to the config, every file mode 0600 and replaced atomically, so
a half-written password file is never read. Stdlib only (urllib): the agent's footprint stays
as it is.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fieldwatch.errors import EnrollmentRefused, FieldwatchError

PATH = "api/v1/enroll"


def fetch(collector: str, token: str, ca: Path | None = None, timeout: float = 30.0,
          allow_http: bool = False) -> dict[str, Any]:
    """POST the token; the collector's answer. EnrollmentRefused when the token is refused,
    FieldwatchError when the collector cannot be reached or answers otherwise."""
    if not collector.startswith("https://") and not allow_http:
        raise FieldwatchError(f"--collector {collector}: expected an https:// URL (the answer "
                              "carries a password)")
    url = collector.rstrip("/") + "/" + PATH
    req = urllib.request.Request(url, data=json.dumps({"token": token}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:  # noqa: S310
            body = json.loads(resp.read(1 << 20))
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read(1 << 16))
        except ValueError:
            detail = {}
        if exc.code == 403:
            raise EnrollmentRefused(str(detail.get("reason", "refused")),
                                    str(detail.get("detail", ""))) from None
        raise FieldwatchError(f"{url}: {exc.code} {detail.get('detail', exc.reason)}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FieldwatchError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    if not isinstance(body, dict) or not {"site", "device", "username", "password",
                                          "broker"} <= body.keys():
        raise FieldwatchError(f"{url}: not an enrollment answer")
    return body


def render_config(bundle: dict[str, Any], password_file: Path, ca_file: Path | None,
                  diag_key: Path | None, state_dir: Path | None = None) -> str:
    """The agent.yaml for what the collector granted (pure)."""
    b = bundle["broker"]
    q = json.dumps  # a JSON string is a valid YAML scalar, whatever it holds
    lines = [f"# Written by `fieldwatch agent enroll` for {bundle['site']}/{bundle['device']}.",
             "# Edit freely; run `fieldwatch agent enroll` again only to replace the credentials.",
             f"device: {q(bundle['device'])}", f"site: {q(bundle['site'])}", "broker:",
             f"  host: {q(b['host'])}", f"  port: {int(b['port'])}",
             f"  username: {q(bundle['username'])}", f"  password_file: {q(str(password_file))}"]
    if ca_file is not None:
        lines.append(f"  tls: {{ca: {q(str(ca_file))}}}")
    if state_dir is not None:
        lines.append(f"state_dir: {q(str(state_dir))}")
    if diag_key is not None:
        lines += ["diag:", "  enabled: true", f"  trusted_keys: [{q(str(diag_key))}]"]
    targets = bundle.get("targets") or []
    if targets:
        lines += ["# SNMP targets this device may publish for; give each its host (docs/snmp.md):",
                  "# snmp:", "#   targets:"]
        for t in targets:
            site, _, dev = t.partition("/")
            extra = "" if site == bundle["site"] else f", site: {site}"
            lines.append(f"#     - {{device: {dev}{extra}, host: ADDRESS}}")
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the first byte, replacing it atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write(bundle: dict[str, Any], config: Path, state_dir: Path | None = None) -> list[Path]:
    """Write the config and its secrets beside it; the paths written."""
    d = config.parent
    d.mkdir(parents=True, exist_ok=True)
    written = []
    pw = d / "mqtt.pass"
    _write_private(pw, bundle["password"] + "\n")
    written.append(pw)
    ca = None
    if bundle["broker"].get("ca_pem"):
        ca = d / "broker-ca.pem"
        _write_private(ca, bundle["broker"]["ca_pem"])
        written.append(ca)
    key = None
    if bundle.get("diag_public_key"):
        key = d / "diag-collector.pub"
        _write_private(key, bundle["diag_public_key"])
        written.append(key)
    if config.exists():  # edited by hand, perhaps: kept beside the new one
        backup = config.with_name(config.name + ".bak")
        _write_private(backup, config.read_text(encoding="utf-8"))
        written.append(backup)
    _write_private(config, render_config(bundle, pw, ca, key, state_dir))
    written.append(config)
    return written
