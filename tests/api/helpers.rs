use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Response};
use serde_json::{json, Value};
use sms2fa::app::Application;
use sms2fa::config::{AccountConfig, Config, ModemConfig, Requirements};
use sms2fa::modem::ModemStatus;
use sms2fa::otp::ManualClock;
use sms2fa::sim::{ReceivedSms, SimOptions, SimPort, SmsLog};
use tokio::sync::{oneshot, watch};

pub const SID: &str = "ACtest1";
pub const TOKEN: &str = "token-one";
pub const OTHER_SID: &str = "ACtest2";
pub const OTHER_TOKEN: &str = "token-two";
pub const TO: &str = "+13216549878";
pub const FROM: &str = "+15550001111";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub sms: SmsLog,
    pub clock: Arc<ManualClock>,
    pub state: Arc<tempfile::TempDir>,
    /// The simulated modems, in config order (`sim0`, `sim1`, …).
    pub modems: Vec<SimPort>,
    pub modem_status: Vec<watch::Receiver<ModemStatus>>,
    /// With the PostgreSQL backend: its database, and the proxy the daemon reaches it
    /// through (cut it to take the database away).
    pub database: Option<Arc<crate::postgres_server::TestDatabase>>,
    pub proxy: Option<Arc<crate::tcp_proxy::Proxy>>,
    stop: Option<oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<()>>,
}

/// The daemon on port 0, its modem a simulated one on a real pseudo-terminal, its clock
/// moved by hand.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with_modems(vec![SimOptions::default()], adjust).await
}

/// The daemon with one simulated modem per entry of `sims`.
pub async fn spawn_app_with_modems(
    sims: Vec<SimOptions>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let state = Arc::new(tempfile::tempdir().expect("temp dir"));
    let clock = Arc::new(ManualClock::new());
    start(state, clock, SmsLog::in_memory(), sims, adjust).await
}

/// The daemon on the PostgreSQL backend: a fresh database of the test server, reached
/// through a proxy the test can cut.
pub async fn spawn_app_on_postgres(
    sims: Vec<SimOptions>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let database = Arc::new(crate::postgres_server::TestDatabase::create().await);
    let server = crate::postgres_server::server();
    let upstream = format!("{}:{}", server.host, server.port)
        .parse()
        .expect("server address");
    let proxy = Arc::new(crate::tcp_proxy::Proxy::start(upstream).await);
    let url = format!(
        "postgresql://{}@{}/{}",
        server.superuser, proxy.addr, database.name
    );
    let state = Arc::new(tempfile::tempdir().expect("temp dir"));
    let clock = Arc::new(ManualClock::new());
    let mut app = start(state, clock, SmsLog::in_memory(), sims, |config| {
        config.storage.backend = sms2fa::config::Backend::Postgres;
        config.storage.url = Some(url);
        config.storage.pool_size = 4;
        config.cluster.node = Some("api-test".into());
        adjust(config);
    })
    .await;
    app.database = Some(database);
    app.proxy = Some(proxy);
    app
}

async fn start(
    state: Arc<tempfile::TempDir>,
    clock: Arc<ManualClock>,
    sms: SmsLog,
    sims: Vec<SimOptions>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let modems: Vec<SimPort> = sims
        .into_iter()
        .enumerate()
        .map(|(i, options)| {
            SimPort::plug(state.path().join(format!("modem{i}")), options, sms.clone())
                .expect("pty modem")
        })
        .collect();
    let mut config =
        Config::parse("", Path::new("test"), Requirements::Nothing).expect("empty config");
    config.http.listen = "127.0.0.1:0".parse().expect("address");
    config.storage.path = state.path().join("state");
    config.accounts = vec![account(SID, TOKEN), account(OTHER_SID, OTHER_TOKEN)];
    config.modems = modems
        .iter()
        .enumerate()
        .map(|(i, modem)| {
            let mut modem = ModemConfig::new(&format!("sim{i}"), modem.path().to_owned());
            modem.send_timeout_secs = 3;
            modem
        })
        .collect();
    adjust(&mut config);
    // A previous instance on the same state folder may still be letting go of it.
    let mut tries = 0;
    let app = loop {
        match Application::build_with_clock(&config, clock.clone()).await {
            Ok(app) => break app,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("app does not build: {e}"),
        }
    };
    let base = format!("http://{}", app.local_addr());
    let modem_status = app.modems().iter().map(|m| m.status.clone()).collect();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        let _ = app
            .run_until(async {
                let _ = stopped.await;
            })
            .await;
    });
    TestApp {
        base,
        client: Client::new(),
        sms,
        clock,
        state,
        modems,
        modem_status,
        database: None,
        proxy: None,
        stop: Some(stop),
        running: Some(running),
    }
}

impl TestApp {
    /// Stop this instance (its store flushed) and hand back its folder.
    pub async fn shut_down(mut self) -> Arc<tempfile::TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            running.await.expect("app task");
        }
        self.state.clone()
    }

    /// Stop this instance and start another on the same state folder, clock and SMS log.
    pub async fn restart(mut self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            running.await.expect("app task");
        }
        let (state, clock, sms) = (self.state.clone(), self.clock.clone(), self.sms.clone());
        drop(self);
        start(state, clock, sms, vec![SimOptions::default()], adjust).await
    }
}

fn account(sid: &str, token: &str) -> AccountConfig {
    AccountConfig {
        sid: sid.into(),
        token: Some(token.into()),
        token_sha256: None,
        receive: false,
        relay: false,
    }
}

pub fn send_body(service: &str, to: &str) -> Value {
    json!({"service": service, "from": FROM, "to": to, "body": "Your {code} for login"})
}

impl TestApp {
    pub async fn post_as(&self, path: &str, sid: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(format!("{}{path}", self.base))
            .basic_auth(sid, Some(token))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.post_as(path, SID, TOKEN, body).await
    }

    pub async fn send_code(&self, service: &str, to: &str) -> Value {
        let response = self.post("/2fa/send", &send_body(service, to)).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    pub async fn verify_as(
        &self,
        sid: &str,
        token: &str,
        service: &str,
        number: &str,
        code: &str,
    ) -> (u16, Value) {
        let response = self
            .post_as(
                "/2fa/verify",
                sid,
                token,
                &json!({"service": service, "number": number, "code": code}),
            )
            .await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("json"))
    }

    pub async fn verify(&self, service: &str, number: &str, code: &str) -> (u16, Value) {
        self.verify_as(SID, TOKEN, service, number, code).await
    }

    /// Wait until every modem is ready (registered, signal known), so that the
    /// modem gauges hold still.
    pub async fn wait_ready(&self) {
        for status in &self.modem_status {
            let mut status = status.clone();
            tokio::time::timeout(
                Duration::from_secs(20),
                status.wait_for(|s| s.state == sms2fa::modem::ModemState::Ready),
            )
            .await
            .expect("the modem becomes ready")
            .expect("the modem task runs");
        }
    }

    /// Wait for the `count`th SMS to reach the simulator.
    pub async fn nth_sms(&self, count: usize) -> ReceivedSms {
        let all = self.sms.wait_for(count, Duration::from_secs(20)).await;
        assert!(
            all.len() >= count,
            "only {} SMS arrived, expected {count}",
            all.len()
        );
        all[count - 1].clone()
    }
}

/// The code inside an SMS rendered from "Your {code} for login".
pub fn code_in(sms: &ReceivedSms) -> String {
    let code: String = sms
        .text
        .strip_prefix("Your ")
        .and_then(|rest| rest.strip_suffix(" for login"))
        .unwrap_or_else(|| panic!("unexpected SMS text {:?}", sms.text))
        .to_owned();
    assert_eq!(code.len(), 6, "code {code:?}");
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "code {code:?}");
    code
}

/// Any 6-digit code other than `code`.
pub fn wrong(code: &str) -> String {
    let first = if code.starts_with('0') { '1' } else { '0' };
    format!("{first}{}", &code[1..])
}
