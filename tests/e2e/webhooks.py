#!/usr/bin/env python3
"""Webhooks arrive signed, verified by the `standardwebhooks` library (PyPI), at least
once and in order, through a receiver that is down, answers 500, hangs, and through a
daemon restart.

    tests/e2e/webhooks.py --sms2fa target/debug/sms2fa --work DIR

The receiver is a Python HTTP server that verifies every request with
`standardwebhooks.Webhook(secret).verify(body, headers)` -- never with sms2fa's code --
and behaves as the test's phase says: not listening, 500, hanging past the daemon's
10 s timeout, then 2xx. Events are produced through the API (codes sent and verified)
and by the modem (modem.ready), and checked: each one arrives; the first successful
delivery of each follows the order the events were written in; every retry of an
event carries the same webhook-id and a new webhook-timestamp; nothing in any payload
is a code or a full number.
"""

import argparse
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from standardwebhooks.webhooks import Webhook

SID, TOKEN = "ACapp", "app-token"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OPERATOR_SECRET = "whsec_" + "c2VjcmV0IGZvciB0aGUgb3BlcmF0b3IgaG9vaw=="
NUMBERS = ["+13216549871", "+13216549872", "+13216549873"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """Every request, verified; its answer set by `mode` (ok, fail, hang)."""

    def __init__(self, port):
        self.port = port
        self.mode = "ok"
        self.lock = threading.Lock()
        self.attempts = []   # (path, id, timestamp, status answered, payload)
        self.bad_signatures = 0
        self.server = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                secret = SECRET if self.path == "/hooks/app" else OPERATOR_SECRET
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    payload = Webhook(secret).verify(body, headers)
                except Exception as e:  # the library's verification error
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    print(f"bad signature: {e}", file=sys.stderr)
                    self.send_response(400)
                    self.end_headers()
                    return
                mode = receiver.mode
                if mode == "hang":
                    time.sleep(12)
                status = 204 if mode == "ok" else 500
                with receiver.lock:
                    receiver.attempts.append((self.path, headers["webhook-id"],
                                              int(headers["webhook-timestamp"]), status, payload))
                try:
                    self.send_response(status)
                    self.end_headers()
                except BrokenPipeError:
                    pass

        self.handler = Handler

    def start(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def delivered(self, path):
        """First successful delivery of each event id, in arrival order."""
        seen, order = set(), []
        with self.lock:
            for p, event_id, _, status, payload in self.attempts:
                if p == path and status < 300 and event_id not in seen:
                    seen.add(event_id)
                    order.append((event_id, payload))
        return order

    def attempts_of(self, event_id):
        with self.lock:
            return [a for a in self.attempts if a[1] == event_id]


class Daemon:
    def __init__(self, binary, work, receiver_port):
        self.binary, self.work = binary, work
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.sim = subprocess.Popen(
            [binary, "simulate-modem", "--link", str(work / "modem"), "--sms-log", str(work / "sms.jsonl")],
            stdout=open(work / "sim.log", "w"), stderr=subprocess.STDOUT)
        for _ in range(100):
            if (work / "modem").exists():
                break
            time.sleep(0.1)
        self.config = work / "sms2fa.toml"
        self.config.write_text(f"""
[http]
listen = "127.0.0.1:{self.port}"

[storage]
path = "{work / 'state'}"

[cluster]
node = "gw-e2e"

[otp]
resend_cooldown_secs = 0

[[account]]
sid = "{SID}"
token = "{TOKEN}"

[[modem]]
name = "sim0"
device = "{work / 'modem'}"

[[webhook]]
url = "http://127.0.0.1:{receiver_port}/hooks/app"
secret = "{SECRET}"
account = "{SID}"
name = "app"

[[webhook]]
url = "http://127.0.0.1:{receiver_port}/hooks/ops"
secret = "{OPERATOR_SECRET}"
events = ["modem.ready", "modem.down", "modem.fatal"]
name = "ops"
""")
        self.process = None
        self.start()

    def start(self):
        log = open(self.work / "sms2fa.log", "a")
        self.process = subprocess.Popen([self.binary, "serve", "--config", str(self.config)],
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            try:
                if requests.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.time() > deadline or self.process.poll() is not None:
                sys.exit("sms2fa did not become ready:\n" + (self.work / "sms2fa.log").read_text())
            time.sleep(0.2)

    def stop(self):
        started = time.time()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        return time.time() - started

    def send_code(self, number):
        r = requests.post(f"{self.base}/2fa/send", auth=(SID, TOKEN), json={
            "service": "Login", "from": "+15550000000", "to": number,
            "body": "Your code is {code}"})
        check(r.status_code == 200, f"a code is sent to {number[:5]}…")
        return r.json()["requestID"]

    def sms(self):
        path = self.work / "sms.jsonl"
        return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []

    def metrics(self):
        return requests.get(f"{self.base}/metrics").text


def check(condition, message):
    if not condition:
        sys.exit(f"FAILED: {message}")
    print(f"ok: {message}", flush=True)


def wait_for(what, predicate, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    sys.exit(f"FAILED: {what} within {seconds} s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sms2fa", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)

    receiver = Receiver(free_port())
    # Phase 1: the receiver is down while events happen.
    daemon = Daemon(args.sms2fa, work, receiver.port)
    ids = [daemon.send_code(NUMBERS[0]), daemon.send_code(NUMBERS[1])]
    wait_for("two SMS reach the modem", lambda: len(daemon.sms()) >= 2, 20)
    code = daemon.sms()[0]["text"].split()[-1]
    r = requests.post(f"{daemon.base}/2fa/verify", auth=(SID, TOKEN),
                      json={"service": "Login", "number": NUMBERS[0], "code": code})
    check(r.status_code == 200, "the first code verifies")
    time.sleep(2)

    # Phase 2: up, but answering 500; then hanging past the timeout; then fine.
    receiver.mode = "fail"
    receiver.start()
    wait_for("an attempt answered 500", lambda: any(a[3] == 500 for a in receiver.attempts), 30)
    receiver.mode = "hang"
    wait_for("an attempt that hangs", lambda: len(receiver.attempts) >= 2, 40)
    receiver.mode = "ok"
    expected = 2 * 2 + 1  # queued and sent for two codes, one approval
    wait_for("every account event after the outage",
             lambda: len(receiver.delivered("/hooks/app")) >= expected, 90)

    app_events = receiver.delivered("/hooks/app")
    kinds = [(p["type"], p["data"].get("message_id")) for _, p in app_events]
    for message_id in ids:
        mine = [k for k, m in kinds if m == message_id]
        check(mine[:2] == ["message.queued", "message.sent"],
              f"{message_id[:8]}…: queued, then sent ({mine})")
    check(("verification.approved", ids[0]) in kinds, "the approval is told")
    stamps = [p["timestamp"] for _, p in app_events]
    check(stamps == sorted(stamps), "first deliveries come in the order the events were written")
    head = app_events[0][0]
    retried = receiver.attempts_of(head)
    check(len(retried) >= 3, f"the first event was attempted {len(retried)} times (500, hang, ok)")
    check(len({a[2] for a in retried}) == len(retried),
          "each attempt has its own webhook-timestamp, the same webhook-id")
    ops = receiver.delivered("/hooks/ops")
    check([p["type"] for _, p in ops][:1] == ["modem.ready"], "the operator endpoint gets modem.ready")
    check(ops[0][1]["data"]["modem"] == "sim0" and ops[0][1]["data"]["host"] == "gw-e2e",
          "modem.ready names the modem and the host")

    # Phase 3: a restart while the receiver fails: nothing is lost.
    receiver.mode = "fail"
    third = daemon.send_code(NUMBERS[2])
    wait_for("the third SMS reaches the modem", lambda: len(daemon.sms()) >= 3, 20)
    wait_for("an attempt at the third code's events",
             lambda: any(a[4]["data"].get("message_id") == third for a in receiver.attempts), 30)
    took = daemon.stop()
    check(took < 10, f"shutdown is not held up by a failing endpoint ({took:.1f} s)")
    receiver.mode = "ok"
    daemon.start()
    wait_for("the third code's events after the restart",
             lambda: sum(1 for _, p in receiver.delivered("/hooks/app")
                         if p["data"].get("message_id") == third) >= 2, 60)
    after = [(p["type"], p["data"].get("message_id")) for _, p in receiver.delivered("/hooks/app")]
    mine = [k for k, m in after if m == third]
    check(mine[:2] == ["message.queued", "message.sent"], "after the restart: queued, then sent")

    check(receiver.bad_signatures == 0, "every request verified with standardwebhooks")
    everything = json.dumps([a[4] for a in receiver.attempts])
    for secret in NUMBERS + [code]:
        check(secret not in everything, "no payload holds a full number or a code")
    metrics = daemon.metrics()
    check('sms2fa_webhook_delivered_total{endpoint="app"}' in metrics, "metrics per endpoint")
    daemon.stop()
    daemon.sim.send_signal(signal.SIGTERM)
    receiver.stop()
    print("webhooks end-to-end: all passed")


if __name__ == "__main__":
    main()
