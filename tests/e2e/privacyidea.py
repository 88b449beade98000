#!/usr/bin/env python3
"""privacyIDEA, unmodified from PyPI, sends its SMS OTP through sms2fa and validates it.

    tests/e2e/privacyidea.py --sms2fa target/debug/sms2fa --work DIR

Runs in the virtual environment scripts/e2e.sh makes (privacyidea, requests). It
starts sms2fa with its simulated modem and an account that may relay, starts
privacyIDEA on loopback with SQLite, configures privacyIDEA's HTTP SMS provider
against /sms/send (POST, JSON, Basic auth, a success pattern), enrolls an SMS token
for a user of a flat-file resolver, triggers a challenge with the token PIN, reads
the OTP from the SMS the simulated modem received, and has /validate/check accept it.
A wrong OTP is refused; the GET and form variants of the provider and Kannel's
/cgi-bin/sendsms are exercised the same way.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

SID, TOKEN = "ACprivacyidea", "pi-relay-token"
PHONE = "+13216549878"
PIN = "4711"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, process, log, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"{url}: the process exited ({process.returncode}):\n{Path(log).read_text()}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    sys.exit(f"{url} did not answer within {seconds} s:\n{Path(log).read_text()}")


class Sms2fa:
    """The daemon with a simulated modem; the SMS it sends land in sms.jsonl."""

    def __init__(self, binary, work):
        self.work = work
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.sim_log = work / "sms.jsonl"
        self.sim = subprocess.Popen(
            [binary, "simulate-modem", "--link", str(work / "modem"), "--sms-log", str(self.sim_log)],
            stdout=open(work / "sim.log", "w"), stderr=subprocess.STDOUT)
        for _ in range(100):
            if (work / "modem").exists():
                break
            time.sleep(0.1)
        config = work / "sms2fa.toml"
        config.write_text(f"""
[http]
listen = "127.0.0.1:{self.port}"

[storage]
path = "{work / 'state'}"

[otp]
resend_cooldown_secs = 0

[[account]]
sid = "{SID}"
token = "{TOKEN}"
relay = true

[[modem]]
name = "sim0"
device = "{work / 'modem'}"
""")
        self.log = work / "sms2fa.log"
        self.daemon = subprocess.Popen([binary, "serve", "--config", str(config)],
                                       stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        wait_http(f"{self.base}/healthz", self.daemon, self.log)
        deadline = time.time() + 30
        while requests.get(f"{self.base}/readyz").status_code != 200:
            if time.time() > deadline:
                sys.exit(f"sms2fa never became ready:\n{self.log.read_text()}")
            time.sleep(0.2)

    def sms(self):
        if not self.sim_log.exists():
            return []
        return [json.loads(line) for line in self.sim_log.read_text().splitlines() if line.strip()]

    def wait_sms(self, count, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            sent = self.sms()
            if len(sent) >= count:
                return sent[count - 1]
            time.sleep(0.1)
        sys.exit(f"SMS {count} never reached the simulated modem:\n{self.log.read_text()}")

    def stop(self):
        for process in (self.daemon, self.sim):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


class PrivacyIdea:
    """privacyIDEA on loopback with SQLite, set up with pi-manage as its docs say."""

    def __init__(self, venv_bin, work):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = work / "pi.cfg"
        config.write_text(f"""
SQLALCHEMY_DATABASE_URI = 'sqlite:///{work / "pi.sqlite"}'
SECRET_KEY = 'e2e test secret key'
PI_PEPPER = 'e2e test pepper'
PI_ENCFILE = '{work / "enckey"}'
PI_AUDIT_KEY_PRIVATE = '{work / "private.pem"}'
PI_AUDIT_KEY_PUBLIC = '{work / "public.pem"}'
PI_LOGFILE = '{work / "privacyidea-internal.log"}'
PI_LOGLEVEL = 20
""")
        env = dict(os.environ, PRIVACYIDEA_CONFIGFILE=str(config))
        manage = str(venv_bin / "pi-manage")
        for command in (["setup", "create_enckey"], ["setup", "create_audit_keys"],
                        ["setup", "create_tables"], ["admin", "add", "admin", "-p", "admin-pw"]):
            subprocess.run([manage, *command], env=env, check=True, cwd=work,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.log = work / "privacyidea.log"
        self.server = subprocess.Popen(
            [manage, "run", "-h", "127.0.0.1", "-p", str(self.port)], env=env, cwd=work,
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        wait_http(f"{self.base}/", self.server, self.log, seconds=120)
        answer = requests.post(f"{self.base}/auth",
                               json={"username": "admin", "password": "admin-pw"}).json()
        self.admin = {"Authorization": answer["result"]["value"]["token"]}

    def call(self, method, path, **body):
        response = requests.request(method, f"{self.base}{path}", headers=self.admin, json=body)
        answer = response.json()
        if not answer.get("result", {}).get("status"):
            sys.exit(f"privacyIDEA {method} {path} failed: {answer}")
        return answer

    def stop(self):
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(timeout=20)


def check(condition, message):
    if not condition:
        sys.exit(f"FAILED: {message}")
    print(f"ok: {message}")


def challenge_and_validate(pi, daemon, sms_count, label):
    """Trigger a challenge with the PIN, read the OTP the modem got, validate it."""
    triggered = requests.post(f"{pi.base}/validate/check",
                              json={"user": "alice", "realm": "e2e", "pass": PIN}).json()
    detail = triggered.get("detail", {})
    check(triggered["result"]["value"] is False and "transaction_id" in detail,
          f"{label}: the PIN triggers a challenge ({detail.get('message')})")
    sms = daemon.wait_sms(sms_count)
    check(sms["number"] == PHONE, f"{label}: the SMS went to the user's phone")
    otp = sms["text"].strip()
    check(otp.isdigit() and len(otp) == 6, f"{label}: the SMS holds a 6-digit OTP")
    wrong = ("0" if otp[0] != "0" else "1") + otp[1:]
    refused = requests.post(f"{pi.base}/validate/check", json={
        "user": "alice", "realm": "e2e", "pass": wrong,
        "transaction_id": detail["transaction_id"]}).json()
    check(refused["result"]["value"] is False, f"{label}: a wrong OTP is refused")
    accepted = requests.post(f"{pi.base}/validate/check", json={
        "user": "alice", "realm": "e2e", "pass": otp,
        "transaction_id": detail["transaction_id"]}).json()
    check(accepted["result"]["value"] is True, f"{label}: /validate/check accepts the OTP")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sms2fa", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    venv_bin = Path(sys.executable).parent

    daemon = Sms2fa(os.path.abspath(args.sms2fa), work)
    pi = None
    try:
        pi = PrivacyIdea(venv_bin, work)
        users = work / "users"
        users.write_text(f"alice:x:1000:1000:Alice,,,,:/home/alice:/bin/sh\n")
        pi.call("POST", "/resolver/files", type="passwdresolver", fileName=str(users))
        pi.call("POST", "/realm/e2e", resolvers="files")

        # The HTTP SMS provider as privacyIDEA's docs configure a JSON gateway: the OTP
        # text is "{otp}", which privacyIDEA sends as a JSON number.
        gateway = {
            "name": "sms2fa",
            "module": "privacyidea.lib.smsprovider.HttpSMSProvider.HttpSMSProvider",
            "option.URL": f"{daemon.base}/sms/send",
            "option.HTTP_METHOD": "POST",
            "option.SEND_DATA_AS_JSON": "yes",
            "option.USERNAME": SID,
            "option.PASSWORD": TOKEN,
            "option.RETURN_SUCCESS": '"status":"queued"',
            "option.CHECK_SSL": "no",
            "option.to": "{phone}",
            "option.text": "{otp}",
        }
        pi.call("POST", "/smsgateway", **gateway)
        pi.call("POST", "/system/setConfig", **{"sms.identifier": "sms2fa"})
        enrolled = pi.call("POST", "/token/init", type="sms", user="alice", realm="e2e",
                           phone=PHONE, pin=PIN, genkey=1)
        check(bool(enrolled["detail"]["serial"]), "an SMS token is enrolled for alice")
        challenge_and_validate(pi, daemon, 1, "POST JSON")

        # The same provider as a GET with query parameters, and as a form POST.
        pi.call("POST", "/smsgateway", **dict(gateway, **{"option.HTTP_METHOD": "GET",
                                                        "option.SEND_DATA_AS_JSON": "no"}))
        challenge_and_validate(pi, daemon, 2, "GET")
        pi.call("POST", "/smsgateway", **dict(gateway, **{"option.SEND_DATA_AS_JSON": "no"}))
        challenge_and_validate(pi, daemon, 3, "POST form")

        # Kannel's interface, as privacyIDEA's HTTP provider reaches a Kannel gateway.
        kannel = {
            "name": "sms2fa",
            "module": "privacyidea.lib.smsprovider.HttpSMSProvider.HttpSMSProvider",
            "option.URL": f"{daemon.base}/cgi-bin/sendsms",
            "option.HTTP_METHOD": "GET",
            "option.SEND_DATA_AS_JSON": "no",
            "option.RETURN_SUCCESS": "Accepted for delivery",
            "option.CHECK_SSL": "no",
            "option.username": SID,
            "option.password": TOKEN,
            "option.to": "{phone}",
            "option.text": "{otp}",
        }
        pi.call("POST", "/smsgateway", **kannel)
        challenge_and_validate(pi, daemon, 4, "Kannel sendsms")

        # sms2fa keeps the text off its logs.
        for sms in daemon.sms():
            check(sms["text"] not in daemon.log.read_text(), "the OTP is not in sms2fa's log")
        print("privacyIDEA end-to-end: all passed")
    finally:
        if pi:
            pi.stop()
        daemon.stop()


if __name__ == "__main__":
    main()
