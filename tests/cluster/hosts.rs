//! Two or three real daemons on one database, each with simulated modems of its own
//! (in this process, on real pseudo-terminals): any host answers any request, limits
//! and idempotency keys are the cluster's, `from` routing reaches the host with that
//! SIM, a host killed with `kill -9` loses no accepted code, and a host with another
//! `secret.key` refuses to start; a host whose own modems are down still accepts while
//! another live host's modem could send, and says `no_modem_available` once none can.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{json, Value};
use sms2fa::sim::{ReceivedSms, SimHandle, SimOptions, SimPort, SmsLog};

use crate::daemon::{free_port, start_daemon, wait_healthy, Process};
use crate::postgres_server::TestDatabase;

const SID: &str = "ACcluster";
const TOKEN: &str = "cluster-token";
const FROM: &str = "+15550009999";
/// Short, so that the takeover tests are quick; the lease bound the issue sets is
/// `lease_secs` + 5 s.
const LEASE_SECS: u64 = 5;

/// One gateway host: its daemon, its modems and the SMS they sent.
pub(crate) struct Host {
    node: String,
    base: String,
    pub(crate) daemon: Process,
    sms: SmsLog,
    handles: Vec<SimHandle>,
    _modems: Vec<SimPort>,
    dir: PathBuf,
}

pub(crate) struct Modem {
    number: Option<&'static str>,
    options: SimOptions,
}

impl Modem {
    pub(crate) fn plain() -> Self {
        Self {
            number: None,
            options: SimOptions::default(),
        }
    }
}

/// The secret key every host shares (a copy of one host's `secret.key`).
pub(crate) fn shared_key(dir: &Path) -> PathBuf {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).expect("keys dir");
    sms2fa::otp::SecretKey::load_or_create(&keys).expect("key");
    keys.join("secret.key")
}

async fn start_host(
    database: &TestDatabase,
    root: &Path,
    node: &str,
    key_file: &Path,
    modems: Vec<Modem>,
) -> Host {
    start_host_with(database, root, node, key_file, modems, "").await
}

/// [`start_host`] with `extra` appended to its config (whole sections).
pub(crate) async fn start_host_with(
    database: &TestDatabase,
    root: &Path,
    node: &str,
    key_file: &Path,
    modems: Vec<Modem>,
    extra: &str,
) -> Host {
    let (host, client) = launch(database, root, node, key_file, modems, extra);
    let mut host = host;
    wait_healthy(&client, &host.base, &mut host.daemon).await;
    host
}

/// Write the config and state folder of `node` and start its daemon, without waiting.
fn launch(
    database: &TestDatabase,
    root: &Path,
    node: &str,
    key_file: &Path,
    modems: Vec<Modem>,
    extra: &str,
) -> (Host, Client) {
    let dir = root.join(node);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let key = state.join("secret.key");
    std::fs::copy(key_file, &key).expect("copy the key");
    let sms = SmsLog::in_memory();
    let mut handles = Vec::new();
    let mut ports = Vec::new();
    let port = free_port();
    let mut config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [storage]\nbackend = \"postgres\"\npath = \"{}\"\nurl = \"{}\"\npool_size = 8\n\n\
         [cluster]\nnode = \"{node}\"\nlease_secs = {LEASE_SECS}\n\n\
         [otp]\nresend_cooldown_secs = 30\nmax_sends_per_account_per_minute = 100000\n\n\
         [log]\nfilter = \"info\"\n\n\
         [[account]]\nsid = \"{SID}\"\ntoken = \"{TOKEN}\"\n\n{extra}\n",
        state.display(),
        database.url
    );
    for (i, modem) in modems.into_iter().enumerate() {
        let handle = SimHandle::new();
        let options = SimOptions {
            handle: handle.clone(),
            ..modem.options
        };
        let port = SimPort::plug(dir.join(format!("modem{i}")), options, sms.clone()).expect("pty");
        config.push_str(&format!(
            "\n[[modem]]\nname = \"{node}-m{i}\"\ndevice = \"{}\"\nsend_timeout_secs = 10\n",
            port.path().display()
        ));
        if let Some(number) = modem.number {
            config.push_str(&format!("number = \"{number}\"\n"));
        }
        handles.push(handle);
        ports.push(port);
    }
    let config_path = dir.join("sms2fa.toml");
    std::fs::write(&config_path, config).expect("config");
    let daemon = start_daemon(&config_path, &dir.join("daemon.log"));
    let host = Host {
        node: node.to_owned(),
        base: format!("http://127.0.0.1:{port}"),
        daemon,
        sms,
        handles,
        _modems: ports,
        dir,
    };
    (host, Client::new())
}

impl Host {
    async fn post(&self, client: &Client, path: &str, body: &Value) -> reqwest::Response {
        client
            .post(format!("{}{path}", self.base))
            .basic_auth(SID, Some(TOKEN))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    async fn get(&self, client: &Client, path: &str) -> Value {
        client
            .get(format!("{}{path}", self.base))
            .basic_auth(SID, Some(TOKEN))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }

    async fn send(&self, client: &Client, to: &str, from: &str) -> String {
        let response = self.post(client, "/2fa/send", &send_body(to, from)).await;
        assert_eq!(response.status(), 200, "send on {}", self.node);
        let body: Value = response.json().await.expect("json");
        body["requestID"].as_str().expect("id").to_owned()
    }

    async fn verify(&self, client: &Client, number: &str, code: &str) -> u16 {
        self.post(
            client,
            "/2fa/verify",
            &json!({"service": "Login", "number": number, "code": code}),
        )
        .await
        .status()
        .as_u16()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }
}

/// Send a code to `to` through `host`; its requestID.
pub(crate) async fn send_code_on(host: &Host, client: &Client, to: &str) -> String {
    host.send(client, to, FROM).await
}

fn send_body(to: &str, from: &str) -> Value {
    json!({"service": "Login", "from": from, "to": to, "body": "Your {code} for login"})
}

fn code_in(sms: &ReceivedSms) -> String {
    sms.text
        .strip_prefix("Your ")
        .and_then(|rest| rest.strip_suffix(" for login"))
        .unwrap_or_else(|| panic!("unexpected SMS {:?}", sms.text))
        .to_owned()
}

/// Every SMS to `number` that reached any of `hosts`' modems.
fn arrived(hosts: &[&Host], number: &str) -> Vec<ReceivedSms> {
    hosts
        .iter()
        .flat_map(|h| h.sms.all())
        .filter(|s| s.number == number)
        .collect()
}

async fn wait_for_sms(hosts: &[&Host], number: &str, within: Duration) -> ReceivedSms {
    let deadline = Instant::now() + within;
    loop {
        if let Some(sms) = arrived(hosts, number).into_iter().next() {
            return sms;
        }
        assert!(
            Instant::now() < deadline,
            "no SMS to {number} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until `host`'s `/modems` shows `modem` ready.
async fn wait_modem_ready(client: &Client, host: &Host, modem: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let modems = host.get(client, "/modems").await;
        let ready = modems["modems"].as_array().is_some_and(|all| {
            all.iter()
                .any(|m| m["name"] == modem && m["state"] == "ready" && m["host_down"] == false)
        });
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{modem} never ready on {}: {modems}",
            host.node
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_host_answers_and_limits_and_idempotency_keys_are_the_clusters() {
    let database = TestDatabase::create().await;
    let root = tempfile::tempdir().expect("temp dir");
    let key = shared_key(root.path());
    let a = start_host(&database, root.path(), "gw-a", &key, vec![Modem::plain()]).await;
    let b = start_host(&database, root.path(), "gw-b", &key, vec![Modem::plain()]).await;
    let client = Client::new();
    let hosts = [&a, &b];

    // Sent on A, verified on B, used up for A too.
    let to = "+13215550101";
    let id = a.send(&client, to, FROM).await;
    let sms = wait_for_sms(&hosts, to, Duration::from_secs(20)).await;
    assert_eq!(b.verify(&client, to, &code_in(&sms)).await, 200);
    assert_eq!(a.verify(&client, to, &code_in(&sms)).await, 404);
    let message = b.get(&client, &format!("/2fa/messages/{id}")).await;
    assert_eq!(
        message["requestID"].as_str(),
        Some(id.as_str()),
        "{message}"
    );

    // A cooldown started on A refuses on B.
    let refused = b.post(&client, "/2fa/send", &send_body(to, FROM)).await;
    assert_eq!(refused.status(), 429);
    let refused: Value = refused.json().await.expect("json");
    assert_eq!(refused["error"], "resend_cooldown");

    // One Idempotency-Key on A and on B: one send.
    let keyed = "+13215550102";
    let send_keyed = |host: &Host| {
        client
            .post(format!("{}/2fa/send", host.base))
            .basic_auth(SID, Some(TOKEN))
            .header("idempotency-key", "login-attempt-7")
            .json(&send_body(keyed, FROM))
            .send()
    };
    let first = send_keyed(&a).await.expect("send");
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.expect("json");
    let again = send_keyed(&b).await.expect("send");
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.expect("json");
    assert_eq!(first["requestID"], again["requestID"]);
    wait_for_sms(&hosts, keyed, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(arrived(&hosts, keyed).len(), 1, "sent once");

    // Each host lists both hosts' modems.
    wait_modem_ready(&client, &a, "gw-b-m0").await;
    let listed = b.get(&client, "/modems").await;
    let mut seen: Vec<(String, String)> = listed["modems"]
        .as_array()
        .expect("modems")
        .iter()
        .map(|m| {
            assert!(
                m["host_seen_at"].is_string() && m["host_down"] == false,
                "{m}"
            );
            (
                m["host"].as_str().unwrap().to_owned(),
                m["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("gw-a".to_owned(), "gw-a-m0".to_owned()),
            ("gw-b".to_owned(), "gw-b-m0".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_routing_reaches_the_host_with_that_sim() {
    let database = TestDatabase::create().await;
    let root = tempfile::tempdir().expect("temp dir");
    let key = shared_key(root.path());
    let sim = |number| Modem {
        number: Some(number),
        options: SimOptions::default(),
    };
    let a = start_host(
        &database,
        root.path(),
        "gw-a",
        &key,
        vec![sim("+15550000001")],
    )
    .await;
    let b = start_host(
        &database,
        root.path(),
        "gw-b",
        &key,
        vec![sim("+15550000002")],
    )
    .await;
    let client = Client::new();
    wait_modem_ready(&client, &a, "gw-b-m0").await;
    wait_modem_ready(&client, &b, "gw-a-m0").await;
    for i in 0..4 {
        let to_b = format!("+132155502{i:02}");
        let to_a = format!("+132155503{i:02}");
        a.send(&client, &to_b, "+15550000002").await;
        b.send(&client, &to_a, "+15550000001").await;
        wait_for_sms(&[&b], &to_b, Duration::from_secs(20)).await;
        wait_for_sms(&[&a], &to_a, Duration::from_secs(20)).await;
    }
    assert!(a
        .sms
        .all()
        .iter()
        .all(|s| s.number.starts_with("+132155503")));
    assert!(b
        .sms
        .all()
        .iter()
        .all(|s| s.number.starts_with("+132155502")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_send_loses_no_accepted_code() {
    let database = TestDatabase::create().await;
    let root = tempfile::tempdir().expect("temp dir");
    let key = shared_key(root.path());
    // A: two modems with a slow radio, so they are mid-send when A dies. B: a modem
    // off the network until then, so A's queue waits for B.
    let slow = || Modem {
        number: None,
        options: SimOptions {
            send_delay: Duration::from_secs(4),
            ..SimOptions::default()
        },
    };
    let mut a = start_host(&database, root.path(), "gw-a", &key, vec![slow(), slow()]).await;
    let b = start_host(
        &database,
        root.path(),
        "gw-b",
        &key,
        vec![Modem {
            number: None,
            options: SimOptions {
                registered: false,
                ..SimOptions::default()
            },
        }],
    )
    .await;
    let client = Client::new();
    wait_modem_ready(&client, &b, "gw-a-m0").await;
    wait_modem_ready(&client, &b, "gw-a-m1").await;
    let mut accepted = Vec::new();
    for i in 0..8 {
        let to = format!("+132155504{i:02}");
        let host = if i % 2 == 0 { &a } else { &b };
        accepted.push((to.clone(), host.send(&client, &to, FROM).await));
    }
    // Both of A's modems are sending (their PDU written) when it dies.
    let deadline = Instant::now() + Duration::from_secs(10);
    let sending = loop {
        let mut sending = Vec::new();
        for (to, id) in &accepted {
            let message = b.get(&client, &format!("/2fa/messages/{id}")).await;
            if message["status"] == "sending" {
                sending.push(to.clone());
            }
        }
        if sending.len() == 2 {
            break sending;
        }
        assert!(
            Instant::now() < deadline,
            "A's modems never got busy: {sending:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.daemon.kill();
    let killed = Instant::now();
    b.handles[0].set_registered(true);

    // A's messages go out through B: the queued ones at once, the two it was sending
    // once A's lease has run out. The time to the first of those is the takeover.
    let took_over = loop {
        if sending.iter().any(|to| !arrived(&[&b], to).is_empty()) {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(LEASE_SECS + 25),
            "A's messages never went out through B; B's log:\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Every accepted code arrives (through B, or through A's modems before their pty
    // closed) and verifies on B.
    let hosts = [&a, &b];
    for (to, _) in &accepted {
        wait_for_sms(&[&b], to, Duration::from_secs(LEASE_SECS + 25)).await;
        let sms = arrived(&[&b], to).pop().expect("through B");
        assert_eq!(b.verify(&client, to, &code_in(&sms)).await, 200, "{to}");
    }
    // Duplicates only where the history says "may arrive twice": the two that were
    // being submitted when A died.
    let mut duplicates = 0;
    for (to, id) in &accepted {
        let copies = arrived(&hosts, to).len();
        let message = b.get(&client, &format!("/2fa/messages/{id}")).await;
        let warned = message["history"]
            .as_array()
            .expect("history")
            .iter()
            .any(|t| {
                t["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("may arrive twice"))
            });
        if copies > 1 {
            duplicates += copies - 1;
            assert!(warned, "an unexplained duplicate: {message}");
        }
        assert_eq!(warned, sending.contains(to), "{message}");
    }
    println!(
        "killed host: {} accepted, {} in flight on it, {duplicates} duplicate(s), its first message sent by another host {:.1} s after the kill",
        accepted.len(),
        sending.len(),
        took_over.as_secs_f64()
    );
    assert!(
        took_over <= Duration::from_secs(LEASE_SECS + 5),
        "took {took_over:?}; the bound is lease_secs + 5 s"
    );
    // B counts A as down once its heartbeat is older than the lease.
    let modems = b.get(&client, "/modems").await;
    let a_modems: Vec<&Value> = modems["modems"]
        .as_array()
        .expect("modems")
        .iter()
        .filter(|m| m["host"] == "gw-a")
        .collect();
    assert_eq!(a_modems.len(), 2, "{modems}");
    assert!(a_modems.iter().all(|m| m["host_down"] == true), "{modems}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_another_secret_key_refuses_to_start() {
    let database = TestDatabase::create().await;
    let root = tempfile::tempdir().expect("temp dir");
    let key = shared_key(root.path());
    let _a = start_host(&database, root.path(), "gw-a", &key, vec![Modem::plain()]).await;
    let other_keys = root.path().join("other-keys");
    std::fs::create_dir_all(&other_keys).expect("dir");
    sms2fa::otp::SecretKey::load_or_create(&other_keys).expect("key");
    let (mut c, _) = launch(
        &database,
        root.path(),
        "gw-c",
        &other_keys.join("secret.key"),
        vec![Modem::plain()],
        "",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = c.daemon.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the host with another key keeps running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    let log = c.log();
    assert!(log.contains("another secret key"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_a_working_modem_accepts_while_another_hosts_modem_can_send() {
    let database = TestDatabase::create().await;
    let root = tempfile::tempdir().expect("temp dir");
    let key = shared_key(root.path());
    let sms = "[sms]\nunavailable_after_secs = 2\n";
    let off_network = Modem {
        number: None,
        options: SimOptions {
            registered: false,
            ..SimOptions::default()
        },
    };
    let a = start_host_with(&database, root.path(), "gw-a", &key, vec![off_network], sms).await;
    let mut b = start_host_with(
        &database,
        root.path(),
        "gw-b",
        &key,
        vec![Modem::plain()],
        sms,
    )
    .await;
    let client = Client::new();
    wait_modem_ready(&client, &a, "gw-b-m0").await;
    // Past A's grace, its own modem counts as down; B's carries A's sends.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ready = a.get(&client, "/readyz").await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["modems_ready"], json!(["gw-b/gw-b-m0"]), "{ready}");
    let to = "+13215550700";
    a.send(&client, to, FROM).await;
    let sms_out = wait_for_sms(&[&a, &b], to, Duration::from_secs(20)).await;
    assert_eq!(a.verify(&client, to, &code_in(&sms_out)).await, 200);

    // B dies: once its heartbeat is older than the lease, nothing can send.
    b.daemon.kill();
    let deadline = Instant::now() + Duration::from_secs(LEASE_SECS + 15);
    let body = loop {
        let response = a
            .post(&client, "/2fa/send", &send_body("+13215550701", FROM))
            .await;
        if response.status() == 503 {
            let body: Value = response.json().await.expect("json");
            if body["error"] == "no_modem_available" {
                break body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "A never said no modem is available"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("gw-a-m0"), "{message}");
    let response = client
        .get(format!("{}/readyz", a.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(response.status(), 503);
}
