"""Agent footprint: average RSS/PSS (MB), CPU (% of one core) and collection-cycle time of the
fieldwatch agent at a 10 s interval against a local Mosquitto, measured in the same run as a
bare-loop Python peer (psutil + paho, the published 23.6 MB baseline) and the peers installable
from Debian (prometheus-node-exporter scraped every interval, collectd with the mqtt plugin,
glances exporting CSV). Prints one JSON document.

    python bench/agent_footprint.py [--duration 120] [--interval 10] [--warmup 10]
                                    [--venv DIR | --dev-interpreter]

The agent runs as a customer installs it: from a clean virtualenv (`python -m venv DIR`, no
system site-packages) holding a regular, non-editable `pip install` of this checkout (its
tracked and untracked, not ignored, files, copied to a scratch directory so the build leaves
nothing in the worktree). The development interpreter's site-packages run `.pth` start-up hooks
(an editable-install finder, setuptools' distutils shim, a sandbox CA hook importing certifi)
that an installed agent does not have: about 5 MB on a bare `python -c`, less in the agent,
whose own imports (paho: ssl) load much of the same; its editable install may also point at
another checkout than this one, and its dependency versions may differ from a fresh install.
The venv (default /tmp/fieldwatch-footprint-venv) is reused while its stamp matches this
checkout (`git rev-parse HEAD`, `git status --porcelain` and the content of changed and
untracked files) and the base interpreter; otherwise it is removed and rebuilt (pip, ~10-40 s).
`--dev-interpreter` runs the Python subjects with this interpreter instead, for comparison.
The JSON's `interpreter` block says which was used, whether the venv was rebuilt, where
`fieldwatch.agent` was imported from, the interpreter's own start-up RSS (`python -c`) and
the installed versions of the agent's main dependencies.

Subjects using that interpreter, all started in a scratch working directory and, from the
venv, with the environment of the service unit (agent/install.py: PYTHON* variables dropped
except PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1): the agent with remote diagnostics on
(the default) and off (`python -m fieldwatch.agent run --config F`, as the unit starts it),
and `bare_psutil_paho`, a script that every interval reads cpu_percent, virtual_memory,
disk_usage per partition, net_io_counters(pernic=True) and sensors_temperatures, encodes one
JSON and publishes it QoS 1 through paho's loop_start thread to the same broker. The check
that pysnmp stays unimported without SNMP targets runs with that interpreter too.

Method (as in /work/shared/baselines.md): every subject runs in the foreground, all at once,
tracked by PID with its children; after `warmup` s, RSS and PSS are sampled each second from
/proc/PID/smaps_rollup and averaged, CPU is the change of utime+stime over the window. The
agent's cycle time is its own `agent.cycle_seconds` sample, read off the broker. A peer that is
not installed is reported as missing, not a failure. Targets: RSS <= 30 MB, CPU <= 0.1 %,
cycle <= 50 ms.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psutil
import yaml
from _servers import Mosquitto

from fieldwatch import wire
from fieldwatch.broker import free_port

TICK = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path(tempfile.gettempdir()) / "fieldwatch-footprint-venv"
STAMP = ".fieldwatch-footprint-stamp.json"
# what the service unit sets (agent/install.py); every other PYTHON* variable is dropped
SERVICE_ENV = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
BARE_TOPIC = "bench/bare-psutil-paho/metrics"


def _git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=True,
                          timeout=60).stdout


def repo_files() -> list[str]:
    """Tracked and untracked (not ignored) files of the checkout that exist on disk."""
    names = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split(b"\0")
    return sorted({os.fsdecode(n) for n in names
                   if n and os.path.lexists(REPO / os.fsdecode(n))})


def repo_state() -> dict[str, str]:
    """HEAD and a hash of `git status --porcelain`, the diff against HEAD and the untracked
    files' content: a re-edit of an already modified file changes it too."""
    head = _git("rev-parse", "HEAD").decode().strip()
    status = _git("status", "--porcelain", "-z", "--untracked-files=all")
    h = hashlib.sha256(head.encode())
    h.update(status)
    h.update(_git("diff", "HEAD", "--binary"))
    for name in _git("ls-files", "-z", "--others", "--exclude-standard").split(b"\0"):
        path = REPO / os.fsdecode(name)
        if name and path.is_file():
            h.update(name + b"\0" + path.read_bytes())
    return {"head": head, "dirty": bool(status), "state_sha256": h.hexdigest()}


def _lock(path: Path, timeout: float = 900.0) -> Any:
    """An exclusive flock on `path`, so two benches do not build the same venv at once."""
    f = path.open("w")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if time.monotonic() > deadline:
                f.close()
                raise SystemExit(f"{path} still locked after {timeout:.0f} s") from None
            time.sleep(1.0)


def ensure_venv(venv: Path) -> dict[str, Any]:
    """Build (or reuse, when its stamp matches) a clean venv with fieldwatch pip-installed,
    non-editable, from this checkout. Returns what the JSON reports about it."""
    venv = venv.absolute()
    want = {**repo_state(), "base_python": os.path.realpath(sys.executable),
            "base_version": sys.version}
    python = venv / "bin" / "python"
    lock = _lock(venv.with_name(venv.name + ".lock"))
    try:
        try:
            have = json.loads((venv / STAMP).read_text())
        except (OSError, ValueError):
            have = {}
        built_at = have.pop("built_at", None)
        info: dict[str, Any] = {"venv": str(venv), "head": want["head"],
                                "dirty": want["dirty"]}
        if have == want and python.exists():
            return {**info, "rebuilt": False, "built_at": built_at}
        if venv.is_symlink() or (venv.exists() and not (venv / STAMP).exists()
                                 and any(venv.iterdir())):
            raise SystemExit(f"{venv} is not a venv this bench built; not removing it")
        if venv.exists():
            shutil.rmtree(venv)
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        (venv / STAMP).write_text('{"building": true}')  # ours to remove if pip fails
        with tempfile.TemporaryDirectory(prefix="fw-footprint-src-") as src:
            # a copy, so setuptools' build/ and *.egg-info stay out of the worktree (and a
            # stale build/lib there cannot leak deleted modules into the wheel)
            for name in repo_files():
                dst = Path(src, name)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, dst, follow_symlinks=False)
            pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", src],
                                 capture_output=True, text=True, timeout=1800)
        if pip.returncode != 0:
            raise SystemExit(f"pip install into {venv} failed:\n{pip.stdout}{pip.stderr}")
        stamp = {**want, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        tmp = venv / (STAMP + ".tmp")
        tmp.write_text(json.dumps(stamp, indent=2))
        tmp.replace(venv / STAMP)
        return {**info, "rebuilt": True, "build_seconds": round(time.monotonic() - t0, 1),
                "built_at": stamp["built_at"]}
    finally:
        lock.close()


def service_env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
            **SERVICE_ENV}


# what a bare `python -c` weighs (read before any import of ours), and where fieldwatch is from
PROBE = """
rss = next(int(line.split()[1]) for line in open('/proc/self/status')
           if line.startswith('VmRSS:'))
import sys
startup_modules = len(sys.modules)
certifi = 'certifi' in sys.modules
import importlib.metadata as md, json, pathlib, site, fieldwatch, fieldwatch.agent
versions = {}
for dist in ('fieldwatch', 'psutil', 'paho-mqtt', 'pysnmp', 'cryptography', 'APScheduler',
             'pydantic', 'pydantic-core', 'msgspec', 'PyYAML'):
    try:
        versions[dist] = md.version(dist)
    except md.PackageNotFoundError:
        versions[dist] = None
print(json.dumps({
    'python': sys.executable, 'version': sys.version.split()[0],
    'startup_rss_mb': round(rss / 1024, 1), 'startup_modules': startup_modules,
    'startup_imported_certifi': certifi,
    'pth_files': sorted(p.name for d in site.getsitepackages()
                        for p in pathlib.Path(d).glob('*.pth')),
    'fieldwatch_agent_from': str(pathlib.Path(fieldwatch.agent.__file__).parent),
    'versions': versions}))
"""


class Runtime:
    """The interpreter, environment and working directory every Python subject runs with."""

    def __init__(self, python: str, env: dict[str, str] | None, info: dict[str, Any]) -> None:
        self.python, self.env, self.info = python, env, info
        self.cwd: Path | None = None

    def probe(self) -> dict[str, Any]:
        out = subprocess.run([self.python, "-c", PROBE], capture_output=True, text=True,
                             check=True, timeout=60, env=self.env, cwd=self.cwd).stdout
        return json.loads(out)


def prepare_runtime(args: argparse.Namespace) -> Runtime:
    if args.dev_interpreter:
        return Runtime(sys.executable, None, {"mode": "dev-interpreter", "rebuilt": False})
    info = ensure_venv(args.venv)
    return Runtime(str(Path(info["venv"]) / "bin" / "python"), service_env(),
                   {"mode": "venv", **info})


def tree(pid: int) -> list[psutil.Process]:
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def memory(procs: list[psutil.Process]) -> tuple[float, float]:
    rss = pss = 0
    for p in procs:
        try:
            for line in Path(f"/proc/{p.pid}/smaps_rollup").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key == "Rss":
                    rss += int(rest.split()[0])
                elif key == "Pss":
                    pss += int(rest.split()[0])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


class Subject:
    def __init__(self, name: str, argv: list[str], scrape: str | None = None,
                 runtime: Runtime | None = None) -> None:
        self.name, self.argv, self.scrape = name, argv, scrape
        self.log = tempfile.NamedTemporaryFile(prefix=f"fw-bench-{name}-", suffix=".log",  # noqa: SIM115
                                               delete=False)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=runtime.env if runtime else None,
                                     cwd=runtime.cwd if runtime else None)
        self.rss: list[float] = []
        self.pss: list[float] = []
        self.cpu0 = self.cpu1 = 0.0
        self.scrapes = 0
        self.nprocs = 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def result(self, window: float) -> dict[str, Any]:
        if not self.rss:
            return {"missing": f"exited early; see {self.log.name}"}
        out = {"rss_mb": round(sum(self.rss) / len(self.rss), 1),
               "pss_mb": round(sum(self.pss) / len(self.pss), 1),
               "cpu_percent": round(100 * (self.cpu1 - self.cpu0) / window, 3),
               "cpu_resolution_percent": round(100 / TICK / window, 3),
               "processes": self.nprocs, "command": " ".join(self.argv)}
        if self.scrape:
            out["scrapes"] = self.scrapes
        return out


def start_agent(rt: Runtime, work: Path, port: int, interval: float,
                name: str = "fieldwatch_agent", **extra: Any) -> Subject:
    cfg = work / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump({
        "device": name.replace("_", "-"), "site": "bench", "interval": f"{interval}s",
        "broker": {"host": "127.0.0.1", "port": port}, "state_dir": str(work / name),
        **extra}))
    # as the installed service runs it (agent/install.py)
    return Subject(name, [rt.python, "-m", "fieldwatch.agent", "run", "--config", str(cfg)],
                   runtime=rt)


# the published baseline's "minimal Python agent" (baselines.md section 1)
BARE_SCRIPT = '''\
import json
import sys
import time

import paho.mqtt.client as mqtt
import psutil

port, interval, lifetime = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
topic = sys.argv[4]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bare-psutil-paho")
client.connect("127.0.0.1", port)
client.loop_start()
psutil.cpu_percent()
start = time.monotonic()
seq = 0
while time.monotonic() - start < lifetime:
    vm = psutil.virtual_memory()
    disks = {}
    for part in psutil.disk_partitions():
        try:
            u = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        disks[part.mountpoint] = {"total": u.total, "used": u.used, "percent": u.percent}
    net = {nic: {"bytes_sent": c.bytes_sent, "bytes_recv": c.bytes_recv,
                 "errin": c.errin, "errout": c.errout, "dropin": c.dropin, "dropout": c.dropout}
           for nic, c in psutil.net_io_counters(pernic=True).items()}
    temps = {chip: [t.current for t in ts] for chip, ts in psutil.sensors_temperatures().items()}
    payload = json.dumps({"ts": time.time(), "seq": seq, "cpu_percent": psutil.cpu_percent(),
                          "memory": {"total": vm.total, "available": vm.available,
                                     "percent": vm.percent},
                          "disks": disks, "net": net, "temperatures": temps})
    client.publish(topic, payload, qos=1)
    seq += 1
    time.sleep(max(0.0, start + seq * interval - time.monotonic()))
client.disconnect()
client.loop_stop()
'''


def start_bare(rt: Runtime, work: Path, port: int, interval: float, lifetime: float) -> Subject:
    script = work / "bare_psutil_paho.py"
    script.write_text(BARE_SCRIPT)
    return Subject("bare_psutil_paho", [rt.python, str(script), str(port), str(interval),
                                        str(lifetime), BARE_TOPIC], runtime=rt)


def start_node_exporter() -> Subject | str:
    exe = shutil.which("prometheus-node-exporter")
    if exe is None:
        return "not installed (apt-get install prometheus-node-exporter)"
    port = free_port()
    return Subject("node_exporter", [exe, f"--web.listen-address=127.0.0.1:{port}"],
                   scrape=f"http://127.0.0.1:{port}/metrics")


def start_collectd(work: Path, port: int, interval: float) -> Subject | str:
    exe = shutil.which("collectd") or ("/usr/sbin/collectd"
                                       if Path("/usr/sbin/collectd").exists() else None)
    if exe is None:
        return "not installed (apt-get install collectd-core)"
    conf = work / "collectd.conf"
    plugins = ["cpu", "memory", "load", "df", "disk", "interface", "thermal", "mqtt"]
    conf.write_text(
        f'Interval {interval}\nBaseDir "{work}"\nPIDFile "{work}/collectd.pid"\n'
        'PluginDir "/usr/lib/collectd"\nTypesDB "/usr/share/collectd/types.db"\n'
        + "".join(f"LoadPlugin {p}\n" for p in plugins)
        + f'<Plugin mqtt>\n  <Publish "bench">\n    Host "127.0.0.1"\n    Port {port}\n'
        '    ClientId "collectd-bench"\n    QoS 0\n  </Publish>\n</Plugin>\n')
    return Subject("collectd", [exe, "-f", "-C", str(conf)])


def start_glances(work: Path, interval: float) -> Subject | str:
    exe = shutil.which("glances")
    if exe is None:
        return "not installed (apt-get install glances)"
    return Subject("glances", [exe, "-q", "-t", str(int(interval)), "--export", "csv",
                               "--export-csv-file", str(work / "glances.csv")])


class CycleListener:
    """The agent's own `agent.cycle_seconds`, read off the broker; counts the bare peer's
    messages too."""

    def __init__(self, port: int) -> None:
        self.cycles: list[float] = []
        self.messages = 0
        self.bare_messages = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe(
            [(wire.topic("bench", "fieldwatch-agent", "metrics"), 1), (BARE_TOPIC, 1)])
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        if message.topic == BARE_TOPIC:
            self.bare_messages += 1
            return
        msg = wire.decode(message.payload)
        if isinstance(msg, wire.Metrics):
            self.messages += 1
            self.cycles += [s.value for s in msg.samples if s.name == "agent.cycle_seconds"]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def measure(subjects: list[Subject], warmup: float, duration: float, interval: float) -> None:
    stop = threading.Event()

    def scraper(s: Subject) -> None:
        with httpx.Client(timeout=5) as http:
            while not stop.is_set():
                try:
                    http.get(s.scrape).raise_for_status()  # type: ignore[arg-type]
                    s.scrapes += 1
                except httpx.HTTPError:
                    pass
                stop.wait(interval)

    threads = [threading.Thread(target=scraper, args=(s,), daemon=True)
               for s in subjects if s.scrape]
    for t in threads:
        t.start()
    time.sleep(warmup)
    start = time.monotonic()
    for s in subjects:
        s.cpu0 = cpu_seconds(tree(s.proc.pid))
    while time.monotonic() - start < duration:
        for s in subjects:
            procs = tree(s.proc.pid)
            if procs:
                s.nprocs = max(s.nprocs, len(procs))
                rss, pss = memory(procs)
                s.rss.append(rss)
                s.pss.append(pss)
        time.sleep(1.0)
    for s in subjects:
        s.cpu1 = cpu_seconds(tree(s.proc.pid))
    stop.set()
    for t in threads:
        t.join(10)


def pysnmp_imported_without_targets(rt: Runtime, state_dir: Path) -> bool:
    code = ("import sys, pathlib\n"
            "from fieldwatch.agent.config import AgentConfig\n"
            "from fieldwatch.agent.daemon import Agent\n"
            "a = Agent(AgentConfig(state_dir=pathlib.Path(sys.argv[1])))\n"
            "print(any(m.startswith('pysnmp') for m in sys.modules))\n")
    out = subprocess.run([rt.python, "-c", code, str(state_dir)], capture_output=True,
                         text=True, check=True, timeout=60, env=rt.env,
                         cwd=rt.cwd).stdout.strip()
    return out == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                       help="clean venv to build or reuse (default: %(default)s)")
    which.add_argument("--dev-interpreter", action="store_true",
                       help="run the Python subjects with this interpreter (for comparison)")
    args = ap.parse_args()
    rt = prepare_runtime(args)
    with tempfile.TemporaryDirectory(prefix="fw-footprint-") as tmp:
        work = Path(tmp)
        # neither the checkout (it would shadow the installed package) nor wherever we are
        rt.cwd = work
        interpreter = {**rt.info, **rt.probe(),
                       "env": "os.environ" if rt.env is None else
                       "service unit: PYTHON* dropped but " + " ".join(
                           f"{k}={v}" for k, v in SERVICE_ENV.items())}
        pysnmp_imported = pysnmp_imported_without_targets(rt, work / "pysnmp-check")
        broker = Mosquitto(work / "mosquitto").start()
        listener = CycleListener(broker.port)
        started: dict[str, Subject | str] = {
            "fieldwatch_agent": start_agent(rt, work, broker.port, args.interval),
            # remote diagnostics (on by default) load `cryptography` for request signatures
            "fieldwatch_agent_diag_off": start_agent(rt, work, broker.port, args.interval,
                                                     "fieldwatch_agent_diag_off",
                                                     diag={"enabled": False}),
            "bare_psutil_paho": start_bare(rt, work, broker.port, args.interval,
                                           args.warmup + args.duration + 60),
            "node_exporter": start_node_exporter(),
            "collectd": start_collectd(work, broker.port, args.interval),
            "glances": start_glances(work, args.interval),
        }
        running = [s for s in started.values() if isinstance(s, Subject)]
        try:
            measure(running, args.warmup, args.duration, args.interval)
        finally:
            for s in running:
                s.stop()
            listener.stop()
            broker.stop()
    results: dict[str, Any] = {
        name: (s.result(args.duration) if isinstance(s, Subject) else {"missing": s})
        for name, s in started.items()}
    agent = results["fieldwatch_agent"]
    if listener.cycles:
        agent["cycle_ms_mean"] = round(1000 * sum(listener.cycles) / len(listener.cycles), 2)
        agent["cycle_ms_max"] = round(1000 * max(listener.cycles), 2)
        # the first cycle primes psutil and runs SMART's hourly smartctl scan
        agent["cycle_ms_each"] = [round(1000 * c, 1) for c in listener.cycles]
        agent["messages_received"] = listener.messages
    if "rss_mb" in results["bare_psutil_paho"]:
        results["bare_psutil_paho"]["messages_received"] = listener.bare_messages
    ratios = {}
    for peer in ("bare_psutil_paho", "node_exporter", "collectd", "glances"):
        p = results[peer]
        if "rss_mb" in p and "rss_mb" in agent:
            ratios[f"agent_rss_vs_{peer}"] = round(agent["rss_mb"] / p["rss_mb"], 2)
            if p["cpu_percent"] > 0:
                ratios[f"agent_cpu_vs_{peer}"] = round(agent["cpu_percent"] / p["cpu_percent"], 2)
    targets = {
        "rss_mb_le_30": agent.get("rss_mb", 1e9) <= 30,
        "cpu_percent_le_0.1": agent.get("cpu_percent", 1e9) <= 0.1,
        "cycle_ms_le_50": agent.get("cycle_ms_max", 1e9) <= 50,
        "pysnmp_not_imported_without_targets": not pysnmp_imported,
    }
    print(json.dumps({
        "bench": "agent_footprint", "python": platform.python_version(),
        "cpus": os.cpu_count(), "duration_s": args.duration, "interval_s": args.interval,
        "interpreter": interpreter, "results": results, "ratios": ratios,
        "targets": targets}, indent=2))


if __name__ == "__main__":
    main()
