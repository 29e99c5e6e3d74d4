"""A throwaway 3-node MariaDB Galera cluster on 127.0.0.1, for the opt-in Galera tests.

Each node is a ``mariadbd`` of its own (datadir, socket and ports under one
temporary directory) with Debian's galera-4 provider. Node 1 bootstraps the
cluster (``--wsrep-new-cluster``); nodes 2 and 3 join it and receive their
state by rsync SST. Nothing listens anywhere but 127.0.0.1. Run it by hand:

    python -m tests.galera_support /tmp/galera   # starts, prints the URLs, stops on Enter
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
START_TIMEOUT = 90.0
MYSQL_USER = "mysql"


def galera_available() -> str | None:
    """Why a Galera cluster cannot be started here, or None when it can."""
    for path in (PROVIDER, MARIADBD, INSTALL_DB, shutil.which("rsync") or "/nonexistent-rsync"):
        if not os.path.exists(path):
            return f"{path} is missing (apt-get install galera-4 mariadb-server rsync)"
    return None


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class GaleraNode:
    index: int
    base: Path
    port: int
    gcomm_port: int
    ist_port: int
    sst_port: int
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.base / f"node{self.index}.log"

    @property
    def datadir(self) -> Path:
        return self.base / f"data{self.index}"

    @property
    def socket_path(self) -> Path:
        return self.base / f"node{self.index}.sock"

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}"

    def args(self, peers: str, bootstrap: bool) -> list[str]:
        opts = (f"gmcast.listen_addr=tcp://127.0.0.1:{self.gcomm_port};"
                f"ist.recv_addr=127.0.0.1:{self.ist_port};gcache.size=32M;"
                "evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;"
                "evs.keepalive_period=PT1S;evs.install_timeout=PT5S")
        argv = [MARIADBD, "--no-defaults", f"--user={MYSQL_USER}", f"--datadir={self.datadir}",
                f"--socket={self.socket_path}", f"--pid-file={self.base}/node{self.index}.pid",
                f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-name-resolve",
                f"--log-error={self.log}", "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=16M", "--innodb-flush-log-at-trx-commit=2",
                "--binlog-format=ROW", "--innodb-autoinc-lock-mode=2",
                "--default-storage-engine=InnoDB", "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_bin", "--max-connections=200",
                "--wsrep-on=ON", f"--wsrep-provider={PROVIDER}",
                f"--wsrep-cluster-address=gcomm://{peers}", "--wsrep-cluster-name=radbill-test",
                f"--wsrep-node-name=node{self.index}", "--wsrep-node-address=127.0.0.1",
                f"--wsrep-sst-receive-address=127.0.0.1:{self.sst_port}",
                "--wsrep-sst-method=rsync", f"--wsrep-provider-options={opts}"]
        if bootstrap:
            argv.append("--wsrep-new-cluster")
        return argv

    def start(self, peers: str, bootstrap: bool = False) -> None:
        self.proc = subprocess.Popen(self.args(peers, bootstrap), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def sql(self, statement: str, timeout: float = 10.0) -> str:
        out = subprocess.run(["mariadb", "-uroot", "-h127.0.0.1", f"-P{self.port}", "-N",
                              "-B", "-e", statement], capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode:
            raise RuntimeError(out.stderr.strip())
        return out.stdout.strip()

    def wait_synced(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"galera node {self.index} exited: {self.tail()}")
            try:
                state = self.sql("SHOW STATUS LIKE 'wsrep_local_state_comment'", timeout=3)
                if state.endswith("Synced"):
                    return
                last = state
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                last = str(exc)
            time.sleep(0.5)
        raise RuntimeError(f"galera node {self.index} not synced ({last}): {self.tail()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class GaleraCluster:
    """Three nodes on 127.0.0.1; ``start()`` returns when all three are Synced."""

    def __init__(self, base: Path, size: int = 3) -> None:
        self.base = base
        ports = _free_ports(4 * size)
        self.nodes = [GaleraNode(i + 1, base, *ports[4 * i:4 * i + 4]) for i in range(size)]

    @property
    def peers(self) -> str:
        return ",".join(f"127.0.0.1:{n.gcomm_port}" for n in self.nodes)

    def start(self) -> None:
        """Bootstrap node 1, then let nodes 2 and 3 join it (rsync SST).

        The servers run as the ``mysql`` user: started by root, the SST script's
        rsync daemon would switch to 'nobody', which cannot write the datadirs.
        """
        self.base.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.base, MYSQL_USER, MYSQL_USER)
        first = self.nodes[0]
        subprocess.run([INSTALL_DB, "--no-defaults", f"--user={MYSQL_USER}",
                        f"--datadir={first.datadir}",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        for node in self.nodes[1:]:
            node.datadir.mkdir(exist_ok=True)
            shutil.chown(node.datadir, MYSQL_USER, MYSQL_USER)
        first.start(self.peers, bootstrap=True)
        first.wait_synced()
        # root over TCP from 127.0.0.1 (skip-name-resolve: 'localhost' does not match it).
        first.sql("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';"
                  "GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
        for node in self.nodes[1:]:
            node.start(self.peers)
            node.wait_synced()

    def restart(self, node: GaleraNode) -> None:
        """Start a killed node again; it rejoins (IST from the gcache)."""
        node.start(self.peers)
        node.wait_synced()

    def create_database(self, name: str) -> None:
        self.nodes[0].sql(f"CREATE DATABASE IF NOT EXISTS `{name}` "
                          "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")

    def size(self, node: GaleraNode) -> int:
        return int(node.sql("SHOW STATUS LIKE 'wsrep_cluster_size'").split()[-1])

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.kill()


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/radbill-galera")
    cluster = GaleraCluster(target)
    t0 = time.monotonic()
    try:
        cluster.start()
        print(f"synced in {time.monotonic() - t0:.1f} s:",
              " ".join(n.url("radbill") for n in cluster.nodes), flush=True)
        if sys.stdin.isatty():
            input("Enter stops the cluster ")
    finally:
        cluster.stop()
