"""Private VictoriaMetrics and Prometheus servers on free 127.0.0.1 ports (Debian packages),
each with its own data directory; stop() and start() keep the port and the data (outage tests).
Also used by bench/remote_write.py."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from fieldwatch.broker import free_port


class _Server:
    binary_name = ""
    ready_path = ""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = shutil.which(self.binary_name) or f"/usr/bin/{self.binary_name}"
        self.port = port or free_port()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> _Server:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([self.binary, *self.args()], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.base + self.ready_path, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.binary_name} did not start: "
                                   + self.log.read_text()[-3000:])
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def query(self, expr: str, at: float) -> list[dict]:
        r = httpx.get(self.base + "/api/v1/query", params={"query": expr, "time": f"{at:.3f}"},
                      timeout=10)
        r.raise_for_status()
        return r.json()["data"]["result"]  # type: ignore[no-any-return]


class VictoriaMetrics(_Server):
    binary_name = "victoria-metrics"
    ready_path = "/health"

    def __init__(self, workdir: Path, port: int | None = None, dedup: bool = True) -> None:
        super().__init__(workdir, port)
        self.dedup = dedup

    @property
    def write_url(self) -> str:
        return self.base + "/api/v1/write"

    def args(self) -> list[str]:
        # dedup 1ms: a sample sent twice (a resend after a crash) is kept once, as
        # docs/history.md tells operators; latencyOffset 0: answer samples at once (default:
        # hide the last 30 s); no result cache, so a query after a write sees it
        return [f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.dir / 'data'}", "-retentionPeriod=100y",
                *(["-dedup.minScrapeInterval=1ms"] if self.dedup else []),
                "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=ERROR"]

    def flush(self) -> None:
        """Make what was written searchable now (it is buffered for up to a second)."""
        httpx.get(self.base + "/internal/force_flush", timeout=10).raise_for_status()

    def disk_bytes(self) -> int:
        """VictoriaMetrics' own figure: vm_data_size_bytes summed over its parts."""
        total = 0
        for line in httpx.get(self.base + "/metrics", timeout=10).text.splitlines():
            if line.startswith("vm_data_size_bytes{"):
                total += int(float(line.split()[-1]))
        return total

    def rows(self) -> int:
        total = 0
        for line in httpx.get(self.base + "/metrics", timeout=10).text.splitlines():
            if line.startswith("vm_rows{"):
                total += int(float(line.split()[-1]))
        return total


class Prometheus(_Server):
    binary_name = "prometheus"
    ready_path = "/-/ready"

    def __init__(self, workdir: Path, port: int | None = None, scrape: str | None = None,
                 scrape_interval: str = "1s", out_of_order: str | None = None) -> None:
        super().__init__(workdir, port)
        self.config = self.dir / "prometheus.yml"
        text = f"global:\n  scrape_interval: {scrape_interval}\n"
        if out_of_order:  # accept samples older than the newest of their series this far back
            text += f"storage:\n  tsdb:\n    out_of_order_time_window: {out_of_order}\n"
        if scrape:  # host:port of a /metrics to scrape
            text += (f"scrape_configs:\n  - job_name: fieldwatch\n"
                     f"    static_configs:\n      - targets: ['{scrape}']\n")
        self.config.write_text(text)

    @property
    def write_url(self) -> str:
        return self.base + "/api/v1/write"

    def args(self) -> list[str]:
        return [f"--config.file={self.config}", f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-remote-write-receiver", "--log.level=error"]
