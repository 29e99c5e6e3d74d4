#!/usr/bin/env python3
"""radbill's authentication benchmark: one run, every server, the same load, one table.

In one run, each server in turn is started pinned to one CPU (``--server-cpu``,
default 0) while bench/loadgen.py runs pinned to the other (``--gen-cpu``,
default 1):

1. ``echo``: bench/echo_server.py, to show what the generator itself can do;
2. ``minimal``: bench/minimal_server.py, Twisted + pyrad checking PAP against a
   dict: the ceiling of this runtime;
3. ``radbill-sqlite``: ``radbill serve`` with a temp config and SQLite in a
   temp data dir, 10,000 subscribers on one plan, a MikroTik NAS 127.0.0.1
   with secret testing123 (Message-Authenticator required);
4. ``radbill-mariadb``: the same on MariaDB (database test_bench, dropped and
   re-created);
5. ``freeradius``: FreeRADIUS 3 with the same users in its ``files`` module.

For each: the peak (closed loop, ``--window`` requests in flight, for
``--duration`` seconds) with p50/p99 latency, the server's CPU time per
request (from /proc, so a busy machine skews the rate but hardly the cost),
then p99 at half that peak (open loop, ``--half-duration`` seconds). radbill
also gets a cold sample (subscribers whose argon2 hash has the production
cost, first login each) and a first pass over all 10,000 subscribers before
the peak is measured (see bench/auth_radbill.py for why the 10,000 carry
low-cost hashes). Results go to stdout as a table and to
bench/results/auth-<time>.json.

Usage: .venv/bin/python bench/auth_bench.py [--servers minimal,radbill-sqlite,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import auth_radbill  # noqa: E402
import freeradius_files  # noqa: E402
import loadgen  # noqa: E402

PYTHON = sys.executable
ALL_SERVERS = ("minimal", "radbill-sqlite", "radbill-sqlite-cached", "radbill-mariadb",
               "freeradius")
# radbill-sqlite-cached: credential_cache_ttl long enough that no subscriber is reloaded
# during the run, i.e. every subscriber in memory like the minimal server's dict.
CACHED_TTL = 3600.0
DEFAULT_MARIADB = "mysql+pymysql://root@127.0.0.1:3306/test_bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Generous upper bound on any server's rate here: caps how many datagrams a run precomputes.
MAX_RATE = 70_000


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_cpu_seconds(pid: int) -> float:
    """User + system time of a process, its threads and its live child processes so far.

    Children matter for ``radbill serve --workers N``, whose parent only supervises.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / CLK_TCK
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(process_cpu_seconds(int(c)) for c in children)


def machine_facts() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    facts: dict[str, Any] = {
        "nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
        "kernel": platform.release(), "loadavg_start": os.getloadavg(),
    }
    try:
        import pyrad
        import twisted

        facts["twisted"] = twisted.__version__
        facts["pyrad"] = getattr(pyrad, "__version__", "?")
    except ImportError:
        pass
    if shutil.which(freeradius_files.FREERADIUS):
        out = subprocess.run([freeradius_files.FREERADIUS, "-v"], capture_output=True, text=True,
                             check=False).stdout.splitlines()
        facts["freeradius"] = out[0] if out else "?"
    return facts


@dataclass
class Server:
    """A server process we started, pinned to one CPU, with its log file."""

    name: str
    argv: list[str]
    port: int
    log: Path
    cpu: int | str  # a CPU, or a taskset list such as "0,1"
    proc: subprocess.Popen[bytes] | None = None
    notes: list[str] = field(default_factory=list)

    def start(self) -> None:
        fh = self.log.open("wb")
        self.proc = subprocess.Popen(["taskset", "-c", str(self.cpu), *self.argv],
                                     stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        fh.close()

    def wait_ready(self, timeout: float = 40.0) -> None:
        """Ready means it answered a real Access-Request (for user bench00000)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   + self.tail())
            r = loadgen.run("127.0.0.1", self.port, auth_radbill.SECRET.encode(), window=1,
                            count=1, duration=1.0, timeout=0.5, users=1)
            if r.accepted == 1:
                return
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s:\n" + self.tail())

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return process_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir

    def load(self, server: Server, **kw: Any) -> dict[str, Any]:
        """One loadgen run in its own process on the generator CPU, with the server's CPU cost."""
        argv = [PYTHON, str(BENCH / "loadgen.py"), "--port", str(server.port),
                "--pin", str(self.args.gen_cpu), "--shape", self.args.shape]
        for key, value in kw.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        cpu0 = server.cpu_seconds()
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
        cpu1 = server.cpu_seconds()
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed: {out.stderr.strip()}")
        result: dict[str, Any] = json.loads(out.stdout)
        completed = result["completed"]
        duration = result["duration_s"] or 1e-9
        used = cpu1 - cpu0  # includes the server's idle wake-ups during precompute: small
        result["server_cpu_s"] = round(used, 3)
        result["server_cpu_pct"] = round(100 * used / duration, 1)
        result["server_cpu_us_per_request"] = (round(1e6 * used / completed, 1)
                                               if completed else None)
        return result

    def peak_and_half(self, server: Server) -> dict[str, Any]:
        a = self.args
        peak = self.load(server, window=a.window, duration=a.duration,
                         count=int(a.duration * MAX_RATE), timeout=a.timeout, users=a.users)
        self.show(server.name, "peak", peak)
        out: dict[str, Any] = {"peak": peak}
        if not a.no_half and peak["rate"] > 0:
            rate = peak["rate"] / 2
            half = self.load(server, rate=round(rate, 1), duration=a.half_duration,
                             count=int(rate * a.half_duration) + 1, timeout=a.timeout,
                             users=a.users)
            self.show(server.name, "half-peak", half)
            out["half_peak"] = half
        return out

    @staticmethod
    def show(name: str, what: str, r: dict[str, Any]) -> None:
        lat = r.get("latency_ms", {})
        print(f"  {name:16} {what:10} {r['rate']:>9.1f}/s  p50 {lat.get('p50', 0):8.2f} ms  "
              f"p99 {lat.get('p99', 0):8.2f} ms  ok {r['accepted']}/{r['sent']}  "
              f"lost {r['lost']}  server cpu {r.get('server_cpu_us_per_request')} us/req "
              f"({r.get('server_cpu_pct')}%)  gen cpu {r['generator_cpu_pct']}%", flush=True)
        if what == "peak" and (r.get("server_cpu_pct") or 0) < 90:
            print(f"  {'':16} note: the server got only {r.get('server_cpu_pct')}% of its CPU "
                  "at peak: something else is using it (see load average)", flush=True)

    # -- the servers ---------------------------------------------------------------

    def echo(self) -> dict[str, Any]:
        port = free_udp_port()
        srv = Server("echo", [PYTHON, str(BENCH / "echo_server.py"), "--port", str(port)],
                     port, self.workdir / "echo.log", self.args.server_cpu)
        with running(srv):
            r = self.load(srv, window=self.args.window, duration=5, count=300_000, timeout=2)
            self.show("echo", "peak", r)
            return {"peak": r}

    def minimal(self) -> dict[str, Any]:
        port = free_udp_port()
        srv = Server("minimal", [PYTHON, str(BENCH / "minimal_server.py"), "--port", str(port),
                                 "--users", str(self.args.users)],
                     port, self.workdir / "minimal.log", self.args.server_cpu)
        with running(srv):
            return self.peak_and_half(srv)

    def freeradius(self) -> dict[str, Any]:
        if not shutil.which(freeradius_files.FREERADIUS):
            return {"skipped": f"{freeradius_files.FREERADIUS} is not installed"}
        port = free_udp_port()
        conf = freeradius_files.write_config(self.workdir / "freeradius", port, self.args.users)
        srv = Server("freeradius", freeradius_files.command(conf), port,
                     self.workdir / "freeradius.log", self.args.server_cpu)
        with running(srv):
            return self.peak_and_half(srv)

    def radbill(self, name: str, url: str, hashes: list[str], cold_hash: str,
                ttl: float | None, cold: bool) -> dict[str, Any]:
        a = self.args
        data_dir = self.workdir / name
        data_dir.mkdir()
        if url.startswith("mysql"):
            auth_radbill.reset_mariadb(url)
        t0 = time.perf_counter()
        auth_radbill.populate(url, hashes, cold_hash, a.cold_users if cold else 0,
                              vendor=a.vendor)
        setup_s = time.perf_counter() - t0
        port, acct = free_udp_port(), free_udp_port()
        cfg = auth_radbill.write_config(data_dir / "radbill.toml", data_dir, url, port, acct, ttl,
                                        workers=a.workers)
        srv = Server(name, [str(Path(PYTHON).parent / "radbill"), "serve", "--config", str(cfg)],
                     port, data_dir / "serve.log", a.radbill_cpus or a.server_cpu)
        out: dict[str, Any] = {"setup_s": round(setup_s, 2), "database": url.split("@")[-1],
                               "credential_cache_ttl": ttl if ttl is not None else "default"}
        with running(srv):
            if cold and a.cold_users:
                sample = self.load(srv, prefix=auth_radbill.COLD_PREFIX, users=a.cold_users,
                                   password=auth_radbill.COLD_PASSWORD, count=a.cold_users,
                                   window=8, timeout=60, duration=120)
                self.show(name, "cold", sample)
                out["cold_production_argon2"] = sample
            first = self.load(srv, window=a.window, count=a.users, users=a.users, timeout=10,
                              duration=300)
            self.show(name, "first-pass", first)
            out["first_pass"] = first
            out.update(self.peak_and_half(srv))
        return out


def table(results: dict[str, Any]) -> str:
    rows = [("server", "peak req/s", "p50 ms", "p99 ms", "cpu us/req", "half-peak p99 ms",
             "lost/unsent")]
    for name, r in results["servers"].items():
        if "peak" not in r:
            rows.append((name, r.get("skipped", r.get("error", "-"))[:60], "", "", "", "", ""))
            continue
        p, h = r["peak"], r.get("half_peak", {})
        rows.append((name, f"{p['rate']:.0f}", f"{p['latency_ms'].get('p50', 0):.2f}",
                     f"{p['latency_ms'].get('p99', 0):.2f}",
                     f"{p.get('server_cpu_us_per_request') or 0:.0f}",
                     (f"{h.get('latency_ms', {}).get('p99', 0):.2f} "
                      f"@ {h.get('rate_requested', 0):.0f}/s") if h else "-",
                     f"{p['lost'] + h.get('lost', 0)}/{p['skipped'] + h.get('skipped', 0)}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """radbill against the ceiling, and the generator against everyone."""
    servers = results["servers"]
    out: dict[str, Any] = {}
    minimal = servers.get("minimal", {}).get("peak")
    echo = results.get("echo", {}).get("peak")
    for name, r in servers.items():
        p = r.get("peak")
        if not p:
            continue
        if minimal and name.startswith("radbill"):
            out[f"{name}/minimal rate"] = round(p["rate"] / minimal["rate"], 3)
            if p.get("server_cpu_us_per_request") and minimal.get("server_cpu_us_per_request"):
                out[f"{name}/minimal cpu-normalised"] = round(
                    minimal["server_cpu_us_per_request"] / p["server_cpu_us_per_request"], 3)
        if echo and name != "echo":
            out[f"echo/{name} rate (generator headroom)"] = round(echo["rate"] / p["rate"], 1)
        if name.startswith("radbill") and r.get("half_peak"):
            out[f"{name} half-peak p99 ms"] = r["half_peak"]["latency_ms"].get("p99")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--servers", default=",".join(ALL_SERVERS),
                   help="comma-separated, from " + ", ".join(ALL_SERVERS))
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--cold-users", type=int, default=40,
                   help="subscribers with production-cost argon2 for the cold sample (0 = skip)")
    p.add_argument("--window", type=int, default=64, help="closed loop: requests in flight")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of the peak run")
    p.add_argument("--half-duration", type=float, default=10.0,
                   help="seconds of the half-peak run")
    p.add_argument("--no-half", action="store_true", help="skip the half-peak runs")
    p.add_argument("--no-echo", action="store_true", help="skip the generator check")
    p.add_argument("--timeout", type=float, default=2.0, help="a reply later than this is lost")
    p.add_argument("--mariadb-url", default=DEFAULT_MARIADB)
    p.add_argument("--credential-cache-ttl", type=float, default=None,
                   help="radbill's radius.credential_cache_ttl (default: radbill's own default)")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--gen-cpu", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="JSON file (default bench/results/)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    p.add_argument("--shape", choices=loadgen.SHAPES, default="pppoe",
                   help="Access-Request shape (bench/loadgen.py --shape)")
    p.add_argument("--vendor", default="mikrotik", choices=("mikrotik", "generic"),
                   help="the bench NAS's vendor in radbill")
    p.add_argument("--workers", type=int, default=1,
                   help="radbill rows: server.workers (several processes on the port)")
    p.add_argument("--radbill-cpus", default="",
                   help="taskset CPU list for the radbill rows (default: --server-cpu), "
                        "e.g. 0,1 with --workers 2")
    a = p.parse_args(argv)
    servers = [s.strip() for s in a.servers.split(",") if s.strip()]
    unknown = set(servers) - set(ALL_SERVERS)
    if unknown:
        p.error("unknown server(s): " + ", ".join(sorted(unknown)))
    if a.server_cpu == a.gen_cpu or {a.server_cpu, a.gen_cpu} - os.sched_getaffinity(0):
        p.error("--server-cpu and --gen-cpu must be two different CPUs this process may use")
    if min(a.users, a.window) <= 0 or a.cold_users < 0 or a.duration <= 0:
        p.error("users, window and duration must be positive")

    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="radbill-auth-bench-"))
    results: dict[str, Any] = {
        "command": " ".join([Path(PYTHON).name, "bench/auth_bench.py", *(argv or sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "machine": machine_facts(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "servers": {},
    }
    print(f"auth bench: servers on CPU {a.server_cpu}, generator on CPU {a.gen_cpu}, "
          f"work dir {workdir}", flush=True)
    bench = Bench(a, workdir)
    try:
        hashes: list[str] = []
        cold_hash = ""
        if any(s.startswith("radbill") for s in servers):
            t0 = time.perf_counter()
            hashes = auth_radbill.bench_hashes(a.users)  # all CPUs: nothing is measured yet
            cold_hash = auth_radbill.production_hash() if a.cold_users else ""
            results["hash_setup_s"] = round(time.perf_counter() - t0, 2)
        # From here on this process stays off the server's CPU.
        os.sched_setaffinity(0, {a.gen_cpu})
        if not a.no_echo:
            results["echo"] = bench.echo()
        for name in servers:
            try:
                if name == "minimal":
                    results["servers"][name] = bench.minimal()
                elif name == "freeradius":
                    results["servers"][name] = bench.freeradius()
                else:
                    url = (a.mariadb_url if name == "radbill-mariadb"
                           else f"sqlite:///{workdir / name / 'radbill.sqlite'}")
                    cached = name == "radbill-sqlite-cached"
                    results["servers"][name] = bench.radbill(
                        name, url, hashes, cold_hash,
                        ttl=CACHED_TTL if cached else a.credential_cache_ttl, cold=not cached)
            except Exception as exc:  # one server failing must not lose the others' figures
                print(f"  {name}: FAILED: {exc}", flush=True)
                results["servers"][name] = {"error": str(exc)}
    finally:
        results["machine"]["loadavg_end"] = os.getloadavg()
        results["elapsed_s"] = round(time.time() - started, 1)
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["ratios"] = ratios(results)
    out = a.out or BENCH / "results" / time.strftime("auth-%Y%m%d-%H%M%S.json",
                                                     time.localtime(started))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results))
    print()
    for key, value in results["ratios"].items():
        print(f"{key}: {value}")
    print(f"\nload average {results['machine']['loadavg_start']} -> "
          f"{results['machine']['loadavg_end']}; {results['elapsed_s']} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
