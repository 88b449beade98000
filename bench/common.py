"""Shared helpers of the benchmark scripts in bench/ (standard library only)."""

import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def ensure_apt(packages):
    """Install the Debian packages whose program is missing (program -> package)."""
    missing = [pkg for prog, pkg in packages.items() if shutil.which(prog) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"missing {missing}: run as root, or apt-get install {' '.join(missing)}")
    log(f"installing {missing} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def build(examples=()):
    """The release binaries: $SMS2FA_BIN etc. when set, else one `cargo build --release`."""
    sms2fa = os.environ.get("SMS2FA_BIN")
    found = {"sms2fa": sms2fa}
    for ex in examples:
        found[ex] = os.environ.get(ex.upper() + "_BIN")
    if all(found.values()):
        return {k: Path(v) for k, v in found.items()}
    cmd = ["cargo", "build", "--release", "--bin", "sms2fa"]
    for ex in examples:
        cmd += ["--example", ex]
    log("building:", " ".join(cmd))
    subprocess.run(cmd, cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release"
    out = {"sms2fa": Path(sms2fa) if sms2fa else target / "sms2fa"}
    for ex in examples:
        out[ex] = Path(found[ex]) if found[ex] else target / "examples" / ex
    return out


def proc_children(pid):
    """pid and all its descendants (by scanning /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parents.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def cpu_seconds(pid, tree=False):
    """utime + stime (fields 14, 15 of /proc/PID/stat) of pid, or of its process tree.
    For a tree, the root's cutime + cstime (16, 17) count too: children that exited
    and were reaped (a server's short-lived workers) keep counting, so the total only
    grows."""
    total = 0
    for p in proc_children(pid) if tree else [pid]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        if tree and p == pid:
            total += int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def rss_mib(pid, tree=False):
    total = 0
    for p in proc_children(pid) if tree else [pid]:
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
    return total / (1 << 20)


def median(values):
    values = sorted(values)
    if not values:
        return float("nan")
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))
    return values[k]


def stop(proc, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for(predicate, timeout, what, interval=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Client:
    """A keep-alive HTTP/1.1 client for the sms2fa API on loopback."""

    def __init__(self, addr, sid="ACbench", token="bench-token"):
        host, port = addr.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
        self.conn = None

    def request(self, method, path, body=None):
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                headers = {"Authorization": self.auth}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    headers["Content-Type"] = "application/json"
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                return response.status, payload
            except (ConnectionError, http.client.HTTPException, OSError):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.1)

    def close(self):
        if self.conn is not None:
            self.conn.close()


def sms2fa_config(path, listen, state, modems, extra_otp="", accounts=1, database=None):
    """A config with limits raised for benchmarks; modems = list of device paths;
    database = a PostgreSQL URL for backend = "postgres" (else sled)."""
    storage = f'backend = "postgres"\nurl = "{database}"\n' if database else ""
    text = f"""[http]
listen = "{listen}"
max_body_bytes = 16384

[storage]
path = "{state}"
{storage}
[otp]
ttl_secs = 600
resend_cooldown_secs = 0
max_sends_per_number_per_day = 1000000
max_sends_per_account_per_minute = 100000000
{extra_otp}
[log]
filter = "warn"

[[account]]
sid = "ACbench"
token = "bench-token"
"""
    for k in range(1, accounts):
        text += f"""
[[account]]
sid = "ACbench{k:03d}"
token = "bench-token"
"""
    for i, device in enumerate(modems):
        text += f"""
[[modem]]
name = "sim{i}"
device = "{device}"
"""
    Path(path).write_text(text)


def wait_http(addr, path="/healthz", timeout=30, proc=None):
    client = Client(addr)

    def ok():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode} before {path} answered")
        try:
            status, _ = client.request("GET", path)
            return status == 200
        except OSError:
            return False

    wait_for(ok, timeout, f"http://{addr}{path}", interval=0.05)
    client.close()


def machine():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PHYS_PAGES") * PAGE / (1 << 30)
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {os.uname().sysname} {os.uname().release}"


class Postgres:
    """A PostgreSQL cluster of Debian's `postgresql` package for one benchmark run, in
    `root`, on loopback, run as `nobody` when we are root (PostgreSQL refuses root).
    Durability as shipped (fsync on, synchronous_commit on): a send is answered only
    once its commit is on disk, as with sled. Stopped by stop()."""

    def __init__(self, root, shared_buffers="256MB"):
        ensure_apt({"pg_ctlcluster": "postgresql"})
        self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))[-1]
        self.data = Path(root) / "pgdata"
        self.port = free_port()
        self.user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
        Path(root).chmod(0o755)
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.data, "nobody", "nogroup")
        subprocess.run(self.user + [str(self.bin / "initdb"), "--auth=trust", "--username=postgres",
                                    "--locale=C", "-D", str(self.data)],
                       check=True, stdout=subprocess.DEVNULL)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.data}'\n"
                       f"shared_buffers = {shared_buffers}\nmax_connections = 200\n")
        self.log = open(Path(root) / "postgres.log", "w")
        self.proc = subprocess.Popen(self.user + [str(self.bin / "postgres"), "-D", str(self.data)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1",
                                         "-p", str(self.port)]).returncode == 0, 30, "PostgreSQL")
        self.psql("CREATE DATABASE sms2fa")

    def psql(self, statement, database="postgres"):
        return subprocess.run([str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                               "-U", "postgres", "-d", database, "-tAc", statement],
                              check=True, capture_output=True, text=True).stdout.strip()

    def url(self, database="sms2fa"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def pids(self):
        """The server's processes (postmaster and backends)."""
        return proc_children(self.proc.pid)

    def stop(self):
        stop(self.proc)
        self.log.close()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
