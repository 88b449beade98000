//! Webhooks with two hosts on one database: every event, written by either host, is
//! posted once — by whichever host holds the endpoint — and when that host is killed
//! the other takes the endpoint over and nothing is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Client;
use serde_json::Value;

use crate::hosts::{send_code_on, shared_key, start_host_with, Modem};
use crate::postgres_server::TestDatabase;

/// (webhook-id, event type, message id) of every request.
type Requests = Arc<Mutex<Vec<(String, String, String)>>>;

async fn hook(State(requests): State<Requests>, headers: HeaderMap, body: String) -> StatusCode {
    let payload: Value = serde_json::from_str(&body).expect("json");
    requests.lock().unwrap().push((
        headers["webhook-id"].to_str().unwrap().to_owned(),
        payload["type"].as_str().unwrap_or_default().to_owned(),
        payload["data"]["message_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ));
    StatusCode::NO_CONTENT
}

#[tokio::test]
async fn each_event_is_posted_by_one_host_and_a_dead_hosts_endpoint_moves() {
    let requests: Requests = Arc::default();
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(requests.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let hook = format!(
        "[[webhook]]\nurl = \"{url}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\
         account = \"ACcluster\"\nevents = [\"message.queued\"]\n"
    );

    let database = TestDatabase::create().await;
    let root = tempfile::tempdir().expect("temp dir");
    let key = shared_key(root.path());
    let a = start_host_with(
        &database,
        root.path(),
        "gw-a",
        &key,
        vec![Modem::plain()],
        &hook,
    )
    .await;
    let mut b = start_host_with(
        &database,
        root.path(),
        "gw-b",
        &key,
        vec![Modem::plain()],
        &hook,
    )
    .await;
    let client = Client::new();

    let mut ids = Vec::new();
    for i in 0..6 {
        let host = if i % 2 == 0 { &a } else { &b };
        ids.push(send_code_on(host, &client, &format!("+1321555020{i}")).await);
    }
    let queued = |requests: &Requests| -> HashMap<String, usize> {
        let mut count = HashMap::new();
        for (_, kind, message) in requests.lock().unwrap().iter() {
            if kind == "message.queued" {
                *count.entry(message.clone()).or_insert(0) += 1;
            }
        }
        count
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while ids.iter().any(|id| !queued(&requests).contains_key(id)) {
        assert!(
            Instant::now() < deadline,
            "not every event arrived: {:?}",
            requests.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = queued(&requests);
    for id in &ids {
        assert_eq!(counts[id], 1, "{id} posted {} times", counts[id]);
    }

    // Kill the host that does not hold the endpoint or the one that does: either way
    // the survivor posts what comes next.
    b.daemon.kill();
    let after = send_code_on(&a, &client, "+13215550299").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !queued(&requests).contains_key(&after) {
        assert!(
            Instant::now() < deadline,
            "the event after the kill never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(a);
}
