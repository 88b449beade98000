#!/usr/bin/env python3
"""HTTP API load with wrk (issues 7.2 and 12.7): /2fa/verify and /2fa/send beside
/healthz of the same server, in the same run, on each store: sled, then PostgreSQL (a
cluster of Debian's package started for the run, on the same machine, durability as
shipped). Run through bench/api_load.sh.

Per round (default 3 rounds, each endpoint --duration seconds, 64 connections):
/healthz (the baseline), /2fa/verify (a random number of a pool holding live codes, a
wrong code: lookup + keyed hash + attempt recorded + flushed), /2fa/send (a new number
per request: code + outbox message flushed before the 200). Reported per endpoint:
requests/s, p50/p99 latency (wrk --latency), non-2xx answers, the daemon's CPU (% of
one core, utime+stime over the run) and RSS at the end; medians over the rounds, and
ratios against the baseline of the same round.

The daemon runs a release build with limits raised and one simulated modem with a 3 s
radio time (a real modem's pace: the outbox grows, the modem costs next to nothing).
"""

import argparse
import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    Client,
    Postgres,
    build,
    cpu_seconds,
    ensure_apt,
    log,
    machine,
    median,
    rss_mib,
    sms2fa_config,
    stop,
    wait_for,
    wait_http,
)

HERE = Path(__file__).resolve().parent
POOL_BASE = 15560000000  # +1 556 0000000 ...


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_wrk(text):
    def unit(value, suffix):
        value = float(value)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[suffix]

    out = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        out[f"p{pct}_ms"] = unit(*m.groups()) if m else float("nan")
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", text)
    out["socket_errors"] = m.group(1).strip() if m else ""
    return out


def run_wrk(url, script, env, args, pid, db_pid=None):
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
           "--latency", "--timeout", "5s"]
    if script:
        cmd += ["-s", str(HERE / "wrk" / script)]
    cmd.append(url)
    db0 = cpu_seconds(db_pid, tree=True) if db_pid else 0
    cpu0, t0 = cpu_seconds(pid), time.time()
    text = subprocess.run(cmd, env=dict(os.environ, **env), capture_output=True, text=True,
                          check=True, timeout=args.duration + 60).stdout
    cpu1, t1 = cpu_seconds(pid), time.time()
    db1 = cpu_seconds(db_pid, tree=True) if db_pid else 0
    result = parse_wrk(text)
    result["cpu_pct"] = 100 * (cpu1 - cpu0) / (t1 - t0)
    result["db_cpu_pct"] = 100 * (db1 - db0) / (t1 - t0)
    result["rss_mib"] = rss_mib(pid)
    result["raw"] = text
    return result


def fill_pool(addr, size, threads=16):
    """Send one code to each pool number (through the API, like any client)."""
    counter = iter(range(size))
    lock = threading.Lock()
    errors = []

    def worker():
        client = Client(addr)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            status, body = client.request("POST", "/2fa/send", {
                "service": "Bench", "from": "+15550000000", "to": f"+{POOL_BASE + i}",
                "body": "Your verification code is: {code}"})
            if status != 200:
                errors.append((status, body[:200]))
        client.close()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise RuntimeError(f"{len(errors)} pool sends failed, e.g. {errors[0]}")


def measure(backend, args, bins, root, auth):
    """Rounds of healthz / verify / send(s) against one daemon on `backend`."""
    root = root / backend
    root.mkdir(parents=True)
    database = Postgres(root) if backend == "postgres" else None
    sim_out = open(root / "sim.out", "w")
    sim = subprocess.Popen([str(bins["sim_counter"]), "--link", str(root / "modem"),
                            "--send-delay-ms", "3000", "--timeout", "3600"],
                           stdout=sim_out, stderr=subprocess.STDOUT)
    wait_for(lambda: (root / "modem").exists(), 10, "the simulated modem")
    addr = f"127.0.0.1:{free_port()}"
    conf = root / "sms2fa.toml"
    sms2fa_config(conf, addr, root / "state", [str(root / "modem")],
                  extra_otp="max_attempts = 1000000\nmax_failures_per_number = 100\n",
                  accounts=max(1, args.accounts), database=database and database.url())
    out = open(root / "sms2fa.out", "w")
    proc = subprocess.Popen([str(bins["sms2fa"]), "serve", "--config", str(conf)],
                            stdout=out, stderr=subprocess.STDOUT)
    rounds = []
    db_pid = database.proc.pid if database else None
    try:
        wait_http(addr, proc=proc)
        log(f"{backend}: filling the verify pool: {args.pool} live codes")
        t = time.time()
        fill_pool(addr, args.pool)
        log(f"  {args.pool / (time.time() - t):.0f} sends/s during the fill")
        url = f"http://{addr}"
        for r in range(args.rounds):
            log(f"{backend}: round {r + 1}/{args.rounds}")
            res = {}
            res["healthz"] = run_wrk(url + "/healthz", None, {}, args, proc.pid, db_pid)
            res["verify"] = run_wrk(url, "verify.lua", {
                "SMS2FA_AUTH": auth, "SMS2FA_POOL_BASE": str(POOL_BASE),
                "SMS2FA_POOL_SIZE": str(args.pool)}, args, proc.pid, db_pid)
            res["send"] = run_wrk(url, "send.lua", {
                "SMS2FA_AUTH": auth, "SMS2FA_PREFIX": str(7 + r % 3)}, args, proc.pid, db_pid)
            if args.accounts > 1:
                auths = " ".join(base64.b64encode(f"ACbench{k:03d}:bench-token".encode()).decode()
                                 for k in range(1, args.accounts))
                res["send_accounts"] = run_wrk(url, "send.lua", {
                    "SMS2FA_AUTH": auth, "SMS2FA_AUTHS": auths, "SMS2FA_PREFIX": str(4 + r % 3)},
                    args, proc.pid, db_pid)
            for name, v in res.items():
                log(f"  {name}: {v['rps']:.0f} req/s, p50 {v['p50_ms']:.2f} ms, p99 {v['p99_ms']:.2f} ms, "
                    f"non-2xx {v['non_2xx']}, CPU {v['cpu_pct']:.0f} % (database {v['db_cpu_pct']:.0f} %), "
                    f"RSS {v['rss_mib']:.0f} MiB")
            rounds.append(res)
    finally:
        stop(proc)
        out.close()
        stop(sim)
        sim_out.close()
        if database:
            database.stop()
    return rounds


def summarize(rounds):
    names = [n for n in ("healthz", "verify", "send", "send_accounts") if n in rounds[0]]
    summary = {}
    for name in names:
        vals = [r[name] for r in rounds]
        summary[name] = {k: median([v[k] for v in vals]) for k in
                         ("rps", "p50_ms", "p99_ms", "cpu_pct", "db_cpu_pct", "rss_mib")}
        summary[name]["non_2xx"] = sum(v["non_2xx"] for v in vals)
        summary[name]["requests"] = sum(v["requests"] for v in vals)
    ratios = {name: median([r[name]["rps"] / r["healthz"]["rps"] for r in rounds])
              for name in names if name != "healthz"}
    return names, summary, ratios


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--pool", type=int, default=10000, help="numbers with a live code for verify")
    parser.add_argument("--accounts", type=int, default=64,
                        help="also run /2fa/send rotating over this many accounts (0: skip)")
    parser.add_argument("--backends", default="sled,postgres",
                        help="stores to measure, one after the other in this run")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s, pool of 500")
    parser.add_argument("--workdir", default=os.environ.get("TMPDIR", "/tmp") + "/sms2fa-bench-api")
    parser.add_argument("--json", default=str(HERE.parent / "target/bench/api_load.json"))
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.pool = 1, 3, 500

    ensure_apt({"wrk": "wrk"})
    bins = build(["sim_counter"])
    root = Path(args.workdir)
    subprocess.run(["rm", "-rf", str(root)], check=True)
    root.mkdir(parents=True)
    auth = base64.b64encode(b"ACbench:bench-token").decode()
    backends = [b for b in args.backends.split(",") if b]
    measured = {backend: measure(backend, args, bins, root, auth) for backend in backends}

    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = {"date": date, "machine": machine(), "args": dict(vars(args)), "backends": {}}
    lines = [f"{date}, {results['machine']}; wrk -t{args.threads} -c{args.connections} "
             f"-d{args.duration}s, medians of {args.rounds} round(s); verify pool {args.pool} live codes; "
             f"backends one after the other: {', '.join(backends)}", "",
             "| store | route | requests/s | vs /healthz | p50 | p99 | non-2xx | daemon CPU | database CPU | daemon RSS |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    routes = {"healthz": "GET /healthz", "verify": "POST /2fa/verify", "send": "POST /2fa/send (1 account)",
              "send_accounts": f"POST /2fa/send ({args.accounts - 1} accounts in turn)"}
    verdicts = []
    for backend, rounds in measured.items():
        names, summary, ratios = summarize(rounds)
        results["backends"][backend] = {
            "summary": summary, "ratios_vs_healthz": ratios,
            "rounds": [{k: {kk: vv for kk, vv in v.items() if kk != "raw"} for k, v in r.items()}
                       for r in rounds],
            "raw_last_round": {k: v["raw"] for k, v in rounds[-1].items()}}
        for name in names:
            m = summary[name]
            ratio = "1" if name == "healthz" else f"{100 * ratios[name]:.1f} %"
            db = f"{m['db_cpu_pct']:.0f} %" if backend == "postgres" else "—"
            lines.append(f"| {backend} | {routes[name]} | {m['rps']:.0f} | {ratio} | {m['p50_ms']:.2f} ms | "
                         f"{m['p99_ms']:.2f} ms | {m['non_2xx']} of {m['requests']} | {m['cpu_pct']:.0f} % | "
                         f"{db} | {m['rss_mib']:.0f} MiB |")
        v, s = summary["verify"], summary["send"]
        if backend == "postgres":
            ok = v["rps"] >= 3000 and s["rps"] >= 1000
            verdicts.append(f"postgres: verify {v['rps']:.0f}/s (p99 {v['p99_ms']:.2f} ms), send "
                            f"{s['rps']:.0f}/s (p99 {s['p99_ms']:.2f} ms); target verify ≥ 3,000/s and "
                            f"send ≥ 1,000/s at {args.connections} connections: {'met' if ok else 'MISSED'}")
        else:
            ok_v = ratios["verify"] >= 0.5 and v["p99_ms"] < 5
            ok_s = s["rps"] >= 2000 and s["p99_ms"] < 20
            verdicts.append(f"{backend}: verify {100 * ratios['verify']:.1f} % of /healthz, p99 "
                            f"{v['p99_ms']:.2f} ms (target ≥ 50 % and < 5 ms: {'met' if ok_v else 'MISSED'}); "
                            f"send {s['rps']:.0f}/s, p99 {s['p99_ms']:.2f} ms (target ≥ 2,000/s and < 20 ms: "
                            f"{'met' if ok_s else 'MISSED'})")
    if "sled" in measured and "postgres" in measured:
        sled, pg = summarize(measured["sled"])[1], summarize(measured["postgres"])[1]
        verdicts.append("postgres / sled: " + ", ".join(
            f"{name} {100 * pg[name]['rps'] / sled[name]['rps']:.0f} %" for name in ("verify", "send")))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print("\n".join(lines + [""] + verdicts))


if __name__ == "__main__":
    main()
