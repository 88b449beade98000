#!/usr/bin/env python3
"""Issue 7.1: modem-side drain of sms2fa beside gammu-smsd and smstools3.

    python3 bench/peers.py                # full run: 1,000 SMS per daemon, 3 runs, scaling
    python3 bench/peers.py --quick        # smoke run (50 SMS, 1 run, short scaling)

Each daemon drives the same simulated modem (`examples/sim_counter.rs`: the sms2fa
simulator on a pseudo-terminal, zero radio delay, in a process of its own that counts
the AT commands and bytes it reads and stamps each `+CMGS` answer). A backlog of N
messages is queued first (files dropped in the outbox/spool before the peer starts;
for sms2fa, N HTTP 200s while the simulated modem is off the network), then drained.
Per daemon:

- SMS/s: (N - 1) / (time of the last +CMGS - time of the first);
- AT commands and bytes written to the serial line per SMS, and CPU ms per SMS
  (utime + stime of the daemon's process tree), all counted between the first and
  the last +CMGS, so start-up is left out;
- accept -> +CMGS: with the daemon idle, one message at a time is accepted (file
  renamed into the outbox / HTTP 200 received) and the time to its +CMGS measured.

Then sms2fa alone with a 3 s radio time per +CMGS and N = 1, 2, 4, 8 simulated modems.
Results: Markdown on stdout, JSON in --json (default target/bench/peers.json).
Installs gammu-smsd and smstools with apt-get when missing (root). Loopback and ptys
only; every wait is bounded.
"""

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    Client,
    build,
    cpu_seconds,
    ensure_apt,
    log,
    machine,
    median,
    sms2fa_config,
    stop,
    wait_for,
    wait_http,
)

BODY = "Your verification code is: {code}"
SMSC = "+15550009999"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def number(i):
    return f"+1555{i:07d}"


class Sim:
    """examples/sim_counter in its own process."""

    def __init__(self, binary, workdir, modems=1, delay_ms=0, unregistered=False, timeout=3600):
        self.link = workdir / "modem"
        self.events = workdir / "events.jsonl"
        self.summary_path = workdir / "sim-summary.json"
        self.modems = modems
        args = [
            str(binary), "--link", str(self.link), "--modems", str(modems),
            "--send-delay-ms", str(delay_ms), "--events", str(self.events),
            "--summary", str(self.summary_path), "--timeout", str(timeout),
        ]
        if unregistered:
            args.append("--unregistered")
        self.out = open(workdir / "sim.out", "w")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT)
        wait_for(lambda: all(Path(p).exists() for p in self.devices()), 10, "the simulated modem")
        wait_for(lambda: self.events.exists(), 10, "the events file")

    def devices(self):
        if self.modems == 1:
            return [str(self.link)]
        return [f"{self.link}{i}" for i in range(self.modems)]

    def register(self):
        self.proc.send_signal(signal.SIGUSR1)

    def read_events(self):
        try:
            text = self.events.read_text()
        except OSError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def count(self):
        try:
            with open(self.events, "rb") as f:
                return f.read().count(b"\n")
        except OSError:
            return 0

    def close(self):
        stop(self.proc)
        self.out.close()
        try:
            return json.loads(self.summary_path.read_text())
        except (OSError, ValueError):
            return {}


def drain_window(sim, n, pid, tree, timeout):
    """Wait for n SMS; CPU of the daemon at the first and at the n-th +CMGS."""
    cpu_first = None
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = sim.count()
        if c >= 1 and cpu_first is None:
            cpu_first = cpu_seconds(pid, tree)
        if c >= n:
            cpu_last = cpu_seconds(pid, tree)
            break
        time.sleep(0.005)
    else:
        raise TimeoutError(f"only {sim.count()} of {n} SMS after {timeout}s")
    events = sim.read_events()[:n]
    first, last = events[0], events[-1]
    span = max(last["t"] - first["t"], 1e-9)
    k = n - 1
    return {
        "messages": n,
        "seconds": span,
        "sms_per_s": k / span,
        "at_per_sms": (last["at"] - first["at"]) / k,
        "bytes_per_sms": (last["rx"] - first["rx"]) / k,
        "bytes_from_modem_per_sms": (last["tx"] - first["tx"]) / k,
        "cpu_ms_per_sms": (cpu_last - cpu_first) * 1000 / k,
        "startup_at_commands": first["at"] - 1,
        "cms_errors": last.get("cms_errors", 0),
    }


def latency_probes(sim, accept, probes):
    """accept(i) accepts message i and returns the accept time; wait for its +CMGS."""
    out = []
    for j in range(probes):
        before = sim.count()
        t0 = accept(900_000 + j)
        wait_for(lambda: sim.count() > before, 60, "a probe SMS", interval=0.001)
        t1 = sim.read_events()[before]["t"]
        out.append((t1 - t0) * 1000)
        time.sleep(random.uniform(0.2, 0.5))
    return out


# ---------------------------------------------------------------- gammu-smsd

GAMMU_CONF = """[gammu]
device = {device}
connection = at115200

[smsd]
service = files
logfile = {dir}/smsd.log
debuglevel = 0
inboxpath = {dir}/inbox/
outboxpath = {dir}/outbox/
sentsmspath = {dir}/sent/
errorsmspath = {dir}/error/
OutboxFormat = detail
# Fastest documented settings: rescan the outbox at once, no status polling.
CommTimeout = 0
SendTimeout = 10
ReceiveFrequency = 3600
StatusFrequency = 0
LoopSleep = {loopsleep}
CheckSecurity = 0
CheckBattery = 0
CheckSignal = 0
CheckNetwork = 0
Receive = False
DeliveryReport = no
SMSC = {smsc}
"""


def gammu_file(outbox, i, text):
    """An outbox message in Gammu's SMS backup format ("detail"), the SMSC included
    (the simulator answers AT+CSCA? with ERROR, and Gammu's files backend ignores the
    SMSC setting for .txt files)."""
    num = number(i)
    uni = lambda s: "".join(f"{ord(c):04X}" for c in s)  # noqa: E731
    content = f"""[SMSBackup000]
PDU = Submit
SMSC = "{SMSC}"
SMSCUnicode = {uni(SMSC)}
State = Sent
Number = "{num}"
NumberUnicode = {uni(num)}
Name = ""
NameUnicode = 
Text00 = {uni(text)}
Coding = Default_No_Compression
Folder = 1
Length = {len(text)}
Class = -1
ReplySMSC = False
RejectDuplicates = False
ReplaceMessage = 0
MessageReference = 0
"""
    name = f"OUTA20260101_000000_{i:07d}_{num}_b.smsbackup"
    tmp = outbox.parent / f"tmp-{i}"
    tmp.write_text(content)
    os.rename(tmp, outbox / name)
    return time.time()


def run_gammu(bins, workdir, n, probes, loopsleep):
    for d in ("inbox", "outbox", "sent", "error"):
        (workdir / d).mkdir(parents=True)
    sim = Sim(bins["sim_counter"], workdir)
    conf = workdir / "gammu-smsdrc"
    conf.write_text(GAMMU_CONF.format(device=sim.link, dir=workdir, loopsleep=loopsleep, smsc=SMSC))
    for i in range(n):
        gammu_file(workdir / "outbox", i, f"Your verification code is: {i % 1000000:06d}")
    out = open(workdir / "gammu.out", "w")
    proc = subprocess.Popen(["gammu-smsd", "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        result = drain_window(sim, n, proc.pid, False, timeout=max(120, n * 2))
        result["accept_to_cmgs_ms"] = latency_probes(
            sim, lambda i: gammu_file(workdir / "outbox", i, "Your verification code is: 123456"), probes)
    finally:
        stop(proc)
        out.close()
        result_sim = sim.close()
    result["sim"] = result_sim
    return result


# ---------------------------------------------------------------- smstools3

SMSTOOLS_CONF = """devices = GSM1
outgoing = {dir}/outgoing
checked = {dir}/checked
failed = {dir}/failed
incoming = {dir}/incoming
sent = {dir}/sent
logfile = {dir}/smsd.log
infofile = {dir}/smsd.working
pidfile = {dir}/smsd.pid
loglevel = 4
# Fastest documented settings: poll the spool and the modem every second (the
# smallest sane value: 0 makes both loops spin), trust files renamed into the spool
# (trust_outgoing: no one-second wait per file), no receiving, no network check; on the
# modem, no probe for unexpected input before each command and the fastest answer
# polling (poll_faster, default 5).
delaytime = {delay}
delaytime_mainprocess = {delay}
sleeptime_mainprocess = {delay}
trust_outgoing = yes
blocktime = 1
receive_before_send = no
status_interval = 0
autosplit = 3

[GSM1]
device = {device}
baudrate = 115200
incoming = no
check_network = 0
check_memory_method = 0
pre_init = no
keep_open = yes
send_delay = 0
sentsleeptime = 0
status_signal_quality = no
report = no
trust_spool = yes
detect_unexpected_input = no
poll_faster = 50
"""


def smstools_file(outgoing, i, text):
    tmp = outgoing.parent / f"tmp-{i}"
    tmp.write_text(f"To: {number(i)[1:]}\n\n{text}\n")
    os.rename(tmp, outgoing / f"sms{i:07d}")
    return time.time()


def run_smstools(bins, workdir, n, probes, delay):
    for d in ("outgoing", "checked", "failed", "incoming", "sent"):
        (workdir / d).mkdir(parents=True)
    sim = Sim(bins["sim_counter"], workdir)
    conf = workdir / "smsd.conf"
    conf.write_text(SMSTOOLS_CONF.format(device=sim.link, dir=workdir, delay=delay))
    for i in range(n):
        smstools_file(workdir / "outgoing", i, f"Your verification code is: {i % 1000000:06d}")
    out = open(workdir / "smsd.out", "w")
    proc = subprocess.Popen(["smsd", "-c", str(conf), "-t"], stdout=out, stderr=subprocess.STDOUT)
    try:
        result = drain_window(sim, n, proc.pid, True, timeout=max(180, n * 3))
        result["accept_to_cmgs_ms"] = latency_probes(
            sim, lambda i: smstools_file(workdir / "outgoing", i, "Your verification code is: 123456"), probes)
    finally:
        stop(proc)
        out.close()
        result_sim = sim.close()
    result["sim"] = result_sim
    return result


# ---------------------------------------------------------------- sms2fa

def start_sms2fa(bins, workdir, devices):
    addr = f"127.0.0.1:{free_port()}"
    conf = workdir / "sms2fa.toml"
    sms2fa_config(conf, addr, workdir / "state", devices)
    out = open(workdir / "sms2fa.out", "w")
    proc = subprocess.Popen([str(bins["sms2fa"]), "serve", "--config", str(conf)],
                            stdout=out, stderr=subprocess.STDOUT)
    wait_http(addr, proc=proc)
    return proc, out, addr


def send_many(addr, n, offset=0, threads=16):
    """n sends over `threads` keep-alive connections; accept time per number."""
    import threading

    accepted = {}
    lock = threading.Lock()
    counter = iter(range(offset, offset + n))

    def worker():
        client = Client(addr)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            status, body = client.request("POST", "/2fa/send", {
                "service": "Bench", "from": "+15550000000", "to": number(i), "body": BODY})
            if status != 200:
                raise RuntimeError(f"send {i}: {status} {body[:200]!r}")
            with lock:
                accepted[number(i)] = time.time()
        client.close()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if len(accepted) != n:
        raise RuntimeError(f"only {len(accepted)} of {n} sends accepted")
    return accepted


def modems_ready(addr, count):
    client = Client(addr)
    try:
        status, body = client.request("GET", "/modems")
        if status != 200:
            return False
        states = [m.get("state") for m in json.loads(body).get("modems", [])]
        return len(states) == count and all(s == "ready" for s in states)
    except (OSError, ValueError):
        return False
    finally:
        client.close()


def run_sms2fa(bins, workdir, n, probes):
    workdir.mkdir(parents=True, exist_ok=True)
    sim = Sim(bins["sim_counter"], workdir, unregistered=True)
    proc, out, addr = start_sms2fa(bins, workdir, sim.devices())
    try:
        send_many(addr, n)
        sim.register()
        result = drain_window(sim, n, proc.pid, False, timeout=max(120, n))
        client = Client(addr)

        def accept(i):
            status, body = client.request("POST", "/2fa/send", {
                "service": "Bench", "from": "+15550000000", "to": number(i), "body": BODY})
            assert status == 200, body
            return time.time()

        result["accept_to_cmgs_ms"] = latency_probes(sim, accept, probes)
        client.close()
    finally:
        stop(proc)
        out.close()
        result_sim = sim.close()
    result["sim"] = result_sim
    return result


def run_scale(bins, workdir, modems, per_modem, delay_ms):
    workdir.mkdir(parents=True, exist_ok=True)
    sim = Sim(bins["sim_counter"], workdir, modems=modems, delay_ms=delay_ms)
    proc, out, addr = start_sms2fa(bins, workdir, sim.devices())
    total = modems * per_modem
    try:
        wait_for(lambda: modems_ready(addr, modems), 60, "every modem ready", interval=0.1)
        t0 = time.time()
        send_many(addr, total, threads=min(16, total))
        wait_for(lambda: sim.count() >= total, per_modem * delay_ms / 1000 * 3 + 60,
                 f"{total} SMS", interval=0.005)
        events = sim.read_events()[:total]
    finally:
        stop(proc)
        out.close()
        sim.close()
    t_last = events[-1]["t"]
    per_modem_counts = [sum(1 for e in events if e["modem"] == m) for m in range(modems)]
    rate = total / (t_last - t0)
    ideal = modems / (delay_ms / 1000)
    first = events[0]["t"]
    steady = (total - modems) / (t_last - first) if t_last > first else float("nan")
    return {
        "modems": modems, "messages": total, "seconds": t_last - t0, "sms_per_s": rate,
        "ideal": ideal, "of_ideal": rate / ideal, "steady_sms_per_s": steady,
        "steady_of_ideal": steady / ideal, "per_modem": per_modem_counts,
    }


# ---------------------------------------------------------------- main

def summarise(runs):
    keys = ["sms_per_s", "at_per_sms", "bytes_per_sms", "bytes_from_modem_per_sms",
            "cpu_ms_per_sms", "startup_at_commands"]
    out = {k: median([r[k] for r in runs]) for k in keys}
    lat = [x for r in runs for x in r["accept_to_cmgs_ms"]]
    out["accept_to_cmgs_ms_median"] = median(lat)
    out["accept_to_cmgs_ms_max"] = max(lat) if lat else float("nan")
    out["runs"] = len(runs)
    out["cms_errors"] = sum(r["cms_errors"] for r in runs)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--probes", type=int, default=5, help="accept -> +CMGS probes per run")
    parser.add_argument("--daemons", default="sms2fa,gammu,smstools")
    parser.add_argument("--gammu-loopsleep", type=int, default=0,
                        help="LoopSleep of gammu-smsd (0: no sleep, its fastest)")
    parser.add_argument("--smstools-delay", type=int, default=1,
                        help="delaytime / delaytime_mainprocess of smstools (seconds)")
    parser.add_argument("--scale", default="1,2,4,8", help="modem counts for the 3 s run ('' skips)")
    parser.add_argument("--scale-per-modem", type=int, default=4)
    parser.add_argument("--scale-delay-ms", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="50 SMS, 1 run, 2 probes, short scaling")
    parser.add_argument("--workdir", default=os.environ.get("TMPDIR", "/tmp") + "/sms2fa-bench-peers")
    parser.add_argument("--json", default=str(Path(__file__).resolve().parent.parent / "target/bench/peers.json"))
    args = parser.parse_args()
    if args.quick:
        args.messages, args.runs, args.probes = 50, 1, 2
        args.scale, args.scale_per_modem, args.scale_delay_ms = "1,2", 2, 1000

    daemons = [d for d in args.daemons.split(",") if d]
    needs = {}
    if "gammu" in daemons:
        needs["gammu-smsd"] = "gammu-smsd"
    if "smstools" in daemons:
        needs["smsd"] = "smstools"
    ensure_apt(needs)
    bins = build(["sim_counter"])
    root = Path(args.workdir)
    subprocess.run(["rm", "-rf", str(root)], check=True)
    root.mkdir(parents=True)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = {"date": started, "machine": machine(), "messages": args.messages,
               "runs": args.runs, "daemons": {}, "scale": []}
    versions = {}
    for name in daemons:
        runs = []
        for r in range(args.runs):
            wd = root / f"{name}-{r}"
            wd.mkdir(parents=True)
            log(f"{name}: run {r + 1}/{args.runs}, {args.messages} messages")
            if name == "sms2fa":
                res = run_sms2fa(bins, wd, args.messages, args.probes)
            elif name == "gammu":
                res = run_gammu(bins, wd, args.messages, args.probes, args.gammu_loopsleep)
            elif name == "smstools":
                res = run_smstools(bins, wd, args.messages, args.probes, args.smstools_delay)
            else:
                sys.exit(f"unknown daemon {name}")
            log(f"  {res['sms_per_s']:.1f} SMS/s, {res['at_per_sms']:.2f} AT/SMS, "
                f"{res['bytes_per_sms']:.0f} B/SMS, {res['cpu_ms_per_sms']:.3f} CPU ms/SMS, "
                f"accept->CMGS {median(res['accept_to_cmgs_ms']):.1f} ms")
            runs.append(res)
        results["daemons"][name] = {"summary": summarise(runs), "runs": runs}
    for prog, cmd in (("gammu", ["gammu-smsd", "--version"]), ("smstools", ["smsd", "-V"])):
        if prog in daemons:
            try:
                text = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
                m = re.search(r"(\d+\.\d+\.\d+)", text)
                versions[prog] = m.group(1) if m else "?"
            except (OSError, subprocess.SubprocessError):
                versions[prog] = "?"
    results["versions"] = versions

    for m in [int(x) for x in args.scale.split(",") if x]:
        log(f"scale: {m} modem(s), {args.scale_per_modem} SMS each, {args.scale_delay_ms} ms radio time")
        res = run_scale(bins, root / f"scale-{m}", m, args.scale_per_modem, args.scale_delay_ms)
        log(f"  {res['sms_per_s']:.3f} SMS/s = {100 * res['of_ideal']:.1f} % of {res['ideal']:.3f}")
        results["scale"].append(res)

    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(markdown(results, args))


def markdown(results, args):
    label = {"sms2fa": "sms2fa", "gammu": f"gammu-smsd {results['versions'].get('gammu', '')} (files, LoopSleep={args.gammu_loopsleep})",
             "smstools": f"smstools {results['versions'].get('smstools', '')} (spool, delaytime={args.smstools_delay}, "
                         "delaytime_mainprocess, trust_outgoing, detect_unexpected_input = no, poll_faster = 50)"}
    lines = [f"{results['date']}, {results['machine']}; {results['messages']} SMS per run, "
             f"medians of {results['runs']} run(s)", "",
             "| daemon | SMS/s | AT commands / SMS | bytes to modem / SMS | CPU ms / SMS | accept → +CMGS (median, max) | start-up AT commands |",
             "|---|---|---|---|---|---|---|"]
    d = results["daemons"]
    for name, entry in d.items():
        s = entry["summary"]
        lines.append(f"| {label.get(name, name)} | {s['sms_per_s']:.1f} | {s['at_per_sms']:.2f} | "
                     f"{s['bytes_per_sms']:.0f} | {s['cpu_ms_per_sms']:.3f} | "
                     f"{s['accept_to_cmgs_ms_median']:.1f} ms, {s['accept_to_cmgs_ms_max']:.1f} ms | "
                     f"{s['startup_at_commands']:.0f} |")
    if "sms2fa" in d and len(d) > 1:
        ours = d["sms2fa"]["summary"]
        peers = {k: v["summary"] for k, v in d.items() if k != "sms2fa"}
        fastest = max(peers, key=lambda k: peers[k]["sms_per_s"])
        ratio = ours["sms_per_s"] / peers[fastest]["sms_per_s"]
        fewest = min(p["at_per_sms"] for p in peers.values())
        lines += ["", f"sms2fa / fastest peer ({fastest}): **{ratio:.1f}×** SMS/s "
                  f"(target ≥ 5×: {'met' if ratio >= 5 else 'MISSED'}); AT commands per SMS "
                  f"{ours['at_per_sms']:.2f} vs the fewest of the peers {fewest:.2f} "
                  f"(target ≤: {'met' if ours['at_per_sms'] <= fewest + 1e-9 else 'MISSED'})"]
    if results["scale"]:
        lines += ["", f"sms2fa, {args.scale_delay_ms} ms radio time per +CMGS, "
                  f"{args.scale_per_modem} SMS per modem; rate = SMS / (first accept → last +CMGS)", "",
                  "| modems | SMS | seconds | SMS/s | ideal N / delay | of ideal | SMS per modem |",
                  "|---|---|---|---|---|---|---|"]
        for r in results["scale"]:
            lines.append(f"| {r['modems']} | {r['messages']} | {r['seconds']:.2f} | {r['sms_per_s']:.3f} | "
                         f"{r['ideal']:.3f} | {100 * r['of_ideal']:.1f} % | {r['per_modem']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
