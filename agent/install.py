"""`fieldwatch agent install` / `uninstall`: a hardened systemd unit for the agent.

`render_unit` is pure (config in, unit text out) and is what `--dry-run` prints and the tests
verify with `systemd-analyze verify`. `install` / `uninstall` are the thin shell around it:
they write under a root directory (`/` for real, a temporary one in tests), create the system
user and the state directory when they can, and call systemctl only where systemd runs.
Each step is reported as a line of text; nothing is done silently.

Hardening: a dedicated unprivileged user, no new privileges, a read-only system apart from the
state directory, no capabilities except those a configured feature needs (SMART reads disks
with CAP_SYS_RAWIO as group `disk`; an SNMP trap port below 1024 needs
CAP_NET_BIND_SERVICE), private /tmp, kernel tunables/modules/logs and cgroups read-only,
only the socket families the agent uses, the @system-service syscall set, and a memory cap.
/proc stays fully visible: the process watch list and process count need it.

Before it writes anything, `install` checks what the unit will need at run time
(`service_problems`): an interpreter that outlives this shell (not under /tmp, which the unit's
PrivateTmp hides anyway) and has fieldwatch installed, and that the service user can reach the
interpreter, the fieldwatch package, the config and the files it names. Those are mode-bit
checks for that user (a file with a POSIX ACL is taken as readable); `--dry-run` prints them as
warnings.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fieldwatch.agent.config import AgentConfig

UNIT_NAME = "fieldwatch-agent.service"
UNIT_DIR = Path("etc/systemd/system")
ENV_FILE = "/etc/fieldwatch/agent.env"  # e.g. FIELDWATCH_MQTT_PASSWORD=... (mode 0600)


@dataclass(frozen=True)
class UnitOptions:
    config: Path  # absolute path of agent.yaml
    user: str = "fieldwatch"
    python: str = sys.executable
    memory_max: str = "256M"


# Gone at reboot, or hidden from the unit (PrivateTmp): no place for the service's interpreter.
TRANSIENT = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run/user"))


@dataclass(frozen=True)
class Identity:
    """Who the service runs as, for permission checks: uid None for a user not created yet
    (`install` creates it with a group of its own, so only world permissions apply)."""

    name: str
    uid: int | None = None
    gids: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def of(cls, user: str, extra_groups: Iterable[str] = ()) -> Identity:
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            return cls(user)
        extra = set(extra_groups)  # the unit's SupplementaryGroups=
        gids = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall()
                              if user in g.gr_mem or g.gr_name in extra}
        return cls(user, pw.pw_uid, frozenset(gids))


def _allowed(st: os.stat_result, who: Identity, want: int) -> bool:
    """Mode bits only: want is a mask of 4 (read), 2 (write), 1 (execute/search)."""
    if who.uid == 0:
        return True
    if who.uid is not None and st.st_uid == who.uid:
        bits = st.st_mode >> 6
    elif st.st_gid in who.gids:
        bits = st.st_mode >> 3
    else:
        bits = st.st_mode
    return bits & want == want


def _has_acl(path: Path) -> bool:
    try:
        return "system.posix_acl_access" in os.listxattr(path)
    except OSError:
        return False


def access_problem(path: Path, who: Identity, want: int, what: str) -> str | None:
    """Why `who` cannot use `path` as `want` asks (4 read, 1 run; directories also need
    search), or cannot search a directory above it or above where its symlinks lead; None
    when it can."""
    path = Path(os.path.abspath(path))
    real = path.resolve()
    steps = [*reversed(path.parents), path]
    if real != path:
        steps += [d for d in reversed(real.parents) if d not in steps] + [real]
    for d in steps:
        try:
            st = d.stat()
        except OSError as exc:
            return f"{what} {path}: {exc.strerror or exc}"
        last = d in (path, real)
        need = want | (1 if stat.S_ISDIR(st.st_mode) else 0) if last else 1
        if _allowed(st, who, need) or _has_acl(d):
            continue
        how = (f"cannot {'run' if want == 1 else 'read'} it" if last
               else f"cannot reach it (no search permission on {d})")
        return (f"{what} {path}: the service user {who.name} {how}: "
                f"{stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid}")
    return None


def interpreter_problems(python: str, run: Callable[[list[str]], tuple[int, str]]
                         ) -> tuple[list[str], list[Path]]:
    """Problems with the interpreter the unit will run, and where it finds fieldwatch and
    fieldwatch.agent (two places in an editable install)."""
    exe = Path(os.path.abspath(python))
    for place in TRANSIENT:
        for p in (exe, exe.resolve()):
            if p.is_relative_to(place):
                return ([f"interpreter {exe} lies under {place}, which the service cannot use "
                         f"(gone at reboot; PrivateTmp hides /tmp): install fieldwatch into a "
                         f"lasting virtualenv (docs/agent.md) and run its `fieldwatch agent "
                         f"install`, or pass --python"], [])
    rc, out = run([str(exe), "-c", "import fieldwatch.agent.__main__ as m, fieldwatch as f; "
                                   "print(f.__file__); print(m.__file__)"])
    if rc != 0:
        return [f"interpreter {exe} cannot import fieldwatch.agent (exit {rc}): "
                f"{out.strip()[-300:]}"], []
    return [], [Path(line).parent for line in out.strip().splitlines()[-2:]]


def _probe(argv: list[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        return 127, str(exc)
    return done.returncode, done.stdout if done.returncode == 0 else done.stderr


def service_problems(cfg: AgentConfig, opts: UnitOptions, who: Identity | None = None,
                     run: Callable[[list[str]], tuple[int, str]] = _probe,
                     config: bool = True) -> list[str]:
    """What would stop the installed service from starting, as sentences (`config`: check
    the config file too; False while it is not written yet)."""
    if who is None:
        who = Identity.of(opts.user, ["disk"] if cfg.sources.smart.enabled else [])
    problems, packages = interpreter_problems(opts.python, run)
    checks: list[tuple[Path, int, str]] = []
    if packages:
        checks += [(Path(opts.python), 1, "interpreter"),
                   *((p, 5, "fieldwatch package") for p in dict.fromkeys(packages))]
    if config:
        checks.append((opts.config, 4, "config"))
    named = [cfg.broker.password_file,
             *((cfg.broker.tls.ca, cfg.broker.tls.cert, cfg.broker.tls.key)
               if cfg.broker.tls else ()),
             *(cfg.diag.trusted_keys if cfg.diag.enabled else ())]
    checks += [(p, 4, "file named in the config:") for p in named if p is not None]
    for path, want, what in checks:
        problem = access_problem(path, who, want, what)
        if problem is not None:
            problems.append(problem)
    return problems


def _state_directive(state_dir: Path) -> str:
    """StateDirectory= when the state lives under /var/lib (systemd creates and owns it),
    otherwise an explicit ReadWritePaths= the installer prepares."""
    try:
        rel = state_dir.relative_to("/var/lib")
    except ValueError:
        return f"ReadWritePaths={state_dir}"
    return f"StateDirectory={rel}\nStateDirectoryMode=0750"


def capabilities(cfg: AgentConfig) -> list[str]:
    caps = []
    if cfg.sources.smart.enabled:
        caps.append("CAP_SYS_RAWIO")
    if cfg.snmp.traps.enabled and 0 < cfg.snmp.traps.port < 1024:
        caps.append("CAP_NET_BIND_SERVICE")
    return caps


def render_unit(cfg: AgentConfig, opts: UnitOptions) -> str:
    caps = " ".join(capabilities(cfg))
    lines = [
        "# Generated by `fieldwatch agent install`; re-run it after changing the config.",
        "[Unit]",
        "Description=fieldwatch monitoring agent",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"User={opts.user}",
        f"Group={opts.user}",
        # the agent's own entry point: `fieldwatch agent run` would load the whole CLI
        f"ExecStart={opts.python} -m fieldwatch.agent run --config {opts.config}",
        f"EnvironmentFile=-{ENV_FILE}",
        "Environment=PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
        "Restart=always",
        "RestartSec=5s",
        "TimeoutStopSec=30s",  # time to flush the buffer and say `offline`
        _state_directive(cfg.state_dir),
        "UMask=0077",
        "NoNewPrivileges=yes",
        f"CapabilityBoundingSet={caps}",
        f"AmbientCapabilities={caps}",
        *(["SupplementaryGroups=disk"] if cfg.sources.smart.enabled else []),
        "ProtectSystem=strict",
        "ProtectHome=read-only",  # disk usage of /home still readable
        "PrivateTmp=yes",
        # SMART talks to the disks themselves; without it no device node is needed
        f"PrivateDevices={'no' if cfg.sources.smart.enabled else 'yes'}",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallErrorNumber=EPERM",
        f"MemoryMax={opts.memory_max}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


# -- the shell around it -----------------------------------------------------------------------

Run = Callable[[list[str]], int]


def _run(argv: list[str]) -> int:
    return subprocess.run(argv, check=False).returncode


def systemd_running(root: Path) -> bool:
    """systemctl can act only on the live system, and only when systemd is PID 1."""
    return root == Path("/") and Path("/run/systemd/system").is_dir() \
        and shutil.which("systemctl") is not None


def install(cfg: AgentConfig, opts: UnitOptions, root: Path = Path("/"), start: bool = True,
            run: Run = _run, say: Callable[[str], None] = print) -> Path:
    unit = root / UNIT_DIR / UNIT_NAME
    live = root == Path("/")
    if live and os.geteuid() != 0:
        say("note: not running as root; writing the unit will likely fail (use sudo)")
    if live:
        _ensure_user(opts.user, run, say)
    if not str(cfg.state_dir).startswith("/var/lib/"):
        state = root / cfg.state_dir.relative_to("/")
        state.mkdir(parents=True, exist_ok=True)
        say(f"created {state}")
        if live:
            shutil.chown(state, opts.user, opts.user)
            say(f"gave {state} to {opts.user}")
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(render_unit(cfg, opts))
    unit.chmod(0o644)
    say(f"wrote {unit}")
    if systemd_running(root):
        for argv in (["systemctl", "daemon-reload"],
                     ["systemctl", "enable", *(["--now"] if start else []), UNIT_NAME]):
            rc = run(argv)
            say(f"ran {' '.join(argv)} (exit {rc})")
    else:
        say("systemd is not running here: enable it later with "
            f"`systemctl daemon-reload && systemctl enable --now {UNIT_NAME}`")
    return unit


def uninstall(root: Path = Path("/"), run: Run = _run,
              say: Callable[[str], None] = print) -> None:
    unit = root / UNIT_DIR / UNIT_NAME
    if systemd_running(root):
        argv = ["systemctl", "disable", "--now", UNIT_NAME]
        say(f"ran {' '.join(argv)} (exit {run(argv)})")
    if unit.exists():
        unit.unlink()
        say(f"removed {unit}")
    else:
        say(f"{unit} was not installed")
    if systemd_running(root):
        say(f"ran systemctl daemon-reload (exit {run(['systemctl', 'daemon-reload'])})")
    say("kept the state directory (outage buffer) and the system user; remove them by hand")


def _ensure_user(user: str, run: Run, say: Callable[[str], None]) -> None:
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    argv = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
            "/nonexistent", "--shell", "/usr/sbin/nologin", user]
    say(f"ran {' '.join(argv)} (exit {run(argv)})")
