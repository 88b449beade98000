//! What webhooks cost, and how fast they go out (issue 14).
//!
//!   cargo bench --bench webhooks              # full run, prints Markdown tables
//!   cargo bench --bench webhooks -- --quick   # a smoke run
//!
//! For each store (sled; PostgreSQL started for the run, durability as shipped) and
//! with no endpoint, then with one endpoint taking every account event: 1,000 codes are
//! sent through `POST /2fa/send` (32 concurrent clients) to the daemon with one
//! simulated modem (zero radio time). Measured: the sends' rate (the events of a send
//! are written in its transaction, so this is their cost on the request path), the
//! time until the modem sent them all, and the time until the endpoint — a local HTTP
//! server answering 204 — had every `message.queued` and `message.sent` (2 events per
//! code, posted one at a time, in order).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/support/postgres.rs"]
mod postgres_server;
mod support;
use sms2fa::app::Application;
use sms2fa::config::WebhookConfig;
use sms2fa::sim::{SimOptions, SimPort, SmsLog};

struct Run {
    sends_per_sec: f64,
    sms_seconds: f64,
    events_seconds: Option<f64>,
}

async fn receiver(count: Arc<AtomicUsize>) -> String {
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

async fn run(codes: usize, database: Option<&str>, webhook: bool) -> Run {
    let state = tempfile::tempdir().expect("temp dir");
    let log = SmsLog::in_memory();
    let port = SimPort::plug(
        state.path().join("modem0"),
        SimOptions {
            echo: false,
            ..SimOptions::default()
        },
        log.clone(),
    )
    .expect("pty");
    let mut config = support::config(state.path(), &[port.path().to_owned()], database);
    let delivered = Arc::new(AtomicUsize::new(0));
    if webhook {
        config.webhooks = vec![WebhookConfig {
            url: receiver(delivered.clone()).await,
            secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            secret_file: None,
            account: Some("ACbench".into()),
            events: Some(vec!["message.queued".into(), "message.sent".into()]),
            name: None,
        }];
    }
    let app = Application::build(&config).await.expect("app");
    let base = format!("http://{}", app.local_addr());
    let mut status = app.modems()[0].status.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let _ = status
        .wait_for(|s| s.state == sms2fa::modem::ModemState::Ready)
        .await;

    let started = Instant::now();
    support::send_codes(&base, codes).await;
    let sends_per_sec = codes as f64 / started.elapsed().as_secs_f64();
    let sent = log.wait_for(codes, Duration::from_secs(600)).await;
    assert_eq!(sent.len(), codes, "every SMS sent");
    let sms_seconds = started.elapsed().as_secs_f64();
    let events_seconds = if webhook {
        let deadline = Instant::now() + Duration::from_secs(600);
        while delivered.load(Ordering::Relaxed) < 2 * codes {
            assert!(Instant::now() < deadline, "events did not all arrive");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(started.elapsed().as_secs_f64())
    } else {
        None
    };
    let _ = stop.send(());
    let _ = server.await;
    Run {
        sends_per_sec,
        sms_seconds,
        events_seconds,
    }
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (runs, codes) = if quick { (1, 50) } else { (3, 1000) };
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let cluster = postgres_server::Cluster::start(&root.path().join("pg"), "");
    let mut databases = 0;

    println!("## Webhooks: cost on the send path and delivery rate ({codes} codes, median of {runs} runs)\n");
    println!("| store | endpoint | sends/s | of no-endpoint | all SMS sent (s) | all 2×{codes} events delivered (s) | events/s delivered |");
    println!("|---|---|---|---|---|---|---|");
    for backend in ["sled", "postgres"] {
        let mut baseline = 0.0;
        for webhook in [false, true] {
            let mut measured = Vec::new();
            for _ in 0..runs {
                let database = if backend == "postgres" {
                    databases += 1;
                    Some(cluster.database(&format!("hooks{databases}")).await)
                } else {
                    None
                };
                measured.push(run(codes, database.as_deref(), webhook).await);
            }
            let rate = support::median(measured.iter().map(|r| r.sends_per_sec).collect());
            if !webhook {
                baseline = rate;
            }
            let sms = support::median(measured.iter().map(|r| r.sms_seconds).collect());
            let events = webhook.then(|| {
                support::median(measured.iter().filter_map(|r| r.events_seconds).collect())
            });
            println!(
                "| {backend} | {} | {rate:.0} | {:.1} % | {sms:.2} | {} | {} |",
                if webhook {
                    "all account events"
                } else {
                    "none"
                },
                100.0 * rate / baseline,
                events.map_or("—".into(), |s| format!("{s:.2}")),
                events.map_or("—".into(), |s| format!("{:.0}", 2.0 * codes as f64 / s)),
            );
        }
    }
}
