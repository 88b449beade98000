//! Operator routes: health, readiness, metrics, modems, and the OpenAPI description
//! held against the live router.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use sms2fa::api::{openapi_document, Access, ROUTES};

use crate::helpers::*;

async fn get(app: &TestApp, path: &str, auth: bool) -> (u16, String) {
    let mut request = app.client.get(format!("{}{path}", app.base));
    if auth {
        request = request.basic_auth(SID, Some(TOKEN));
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

async fn get_json(app: &TestApp, path: &str, auth: bool) -> (u16, Value) {
    let (status, body) = get(app, path, auth).await;
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, json)
}

/// Poll `/readyz` until the simulated modem is up.
async fn wait_ready(app: &TestApp) -> Value {
    for _ in 0..200 {
        let (status, body) = get_json(app, "/readyz", false).await;
        if status == 200 {
            return body;
        }
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "not_ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the daemon never became ready");
}

/// The value of the first sample line that starts with `series` (name and labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let (status, body) = get_json(&app, "/healthz", false).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let ready = wait_ready(&app).await;
    assert_eq!(ready["store"], "ok");
    assert_eq!(ready["modems_ready"], json!(["sim0"]));
}

#[tokio::test]
async fn readyz_is_503_without_a_ready_modem() {
    let mut app = spawn_app().await;
    wait_ready(&app).await;
    app.modems[0].unplug();
    let mut last = Value::Null;
    for _ in 0..100 {
        let (status, body) = get_json_base(&app.base, "/readyz").await;
        if status == 503 {
            assert_eq!(body["modems_ready"], json!([]));
            return;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("still ready with the modem unplugged: {last}");
}

async fn get_json_base(base: &str, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{base}{path}"))
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn modems_need_credentials_and_mask_the_imei() {
    let app = spawn_app().await;
    wait_ready(&app).await;
    let (status, body) = get_json(&app, "/modems", false).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = get_json(&app, "/modems", true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["queued"], 0);
    let modem = &body["modems"][0];
    assert_eq!(modem["name"], "sim0");
    assert!(
        matches!(modem["state"].as_str(), Some("ready" | "sending")),
        "{modem}"
    );
    assert_eq!(modem["sent"], 0);
    let imei = modem["imei"].as_str().expect("the simulator has an IMEI");
    assert!(imei.contains("*****"), "IMEI not masked: {imei}");
    assert_eq!(imei.len(), 15);
}

#[tokio::test]
async fn metrics_count_a_send_verify_cycle() {
    let app = spawn_app().await;
    wait_ready(&app).await;
    app.send_code("Login", TO).await;
    let code = code_in(&app.nth_sms(1).await);
    let (status, _) = app.verify("Login", TO, &wrong(&code)).await;
    assert_eq!(status, 400);
    let (status, _) = app.verify("Login", TO, &code).await;
    assert_eq!(status, 200);
    let refused = app.post("/2fa/send", &send_body("Login", "12")).await;
    assert_eq!(refused.status(), 400);

    // The modem's counter moves once the dispatcher has recorded the send.
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = get(&app, "/metrics", false).await.1;
        if sample(&metrics, "sms2fa_sms_sent_total{modem=\"sim0\"}") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (series, value) in [
        (
            "sms2fa_sends_total{outcome=\"accepted\",reason=\"\"}",
            1.0,
        ),
        (
            "sms2fa_sends_total{outcome=\"refused\",reason=\"invalid_phone_number\"}",
            1.0,
        ),
        ("sms2fa_verifications_total{outcome=\"approved\"}", 1.0),
        ("sms2fa_verifications_total{outcome=\"invalid_code\"}", 1.0),
        ("sms2fa_sms_sent_total{modem=\"sim0\"}", 1.0),
        ("sms2fa_modem_state{modem=\"sim0\",state=\"fatal\"}", 0.0),
        ("sms2fa_queue_depth", 0.0),
        (
            "sms2fa_http_request_duration_seconds_count{method=\"POST\",route=\"/2fa/verify\",status=\"200\"}",
            1.0,
        ),
    ] {
        assert_eq!(sample(&metrics, series), Some(value), "{series} in\n{metrics}");
    }
    assert!(metrics.contains("# TYPE sms2fa_http_request_duration_seconds histogram"));
    assert!(!metrics.contains(&code), "a code leaked into /metrics");
}

#[tokio::test]
async fn every_route_is_served_and_documented() {
    let app = spawn_app().await;
    for route in ROUTES {
        let path = route.path.replace("{id}", "SMnothing");
        let request = app
            .client
            .request(
                route.method.parse().expect("method"),
                format!("{}{path}", app.base),
            )
            .basic_auth(SID, Some(TOKEN))
            .header("content-type", "application/json")
            .body("{}");
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        assert!(
            !body.contains("no_such_route") && !body.contains("method_not_allowed"),
            "{} {path} is not routed: {status} {body}",
            route.method
        );
        let refused_anonymous = match route.access {
            Access::Public => None,
            Access::Basic => Some(401),
            Access::KannelParams => Some(403),
        };
        if let Some(refused) = refused_anonymous {
            let anonymous = app
                .client
                .request(
                    route.method.parse().expect("method"),
                    format!("{}{path}", app.base),
                )
                .send()
                .await
                .expect("request");
            assert_eq!(anonymous.status(), refused, "{} {path}", route.method);
        }
    }

    let document = openapi_document().expect("docs/openapi.yaml parses");
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|key| ["get", "post", "put", "delete", "patch"].contains(&key.as_str()))
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, routed, "docs/openapi.yaml and ROUTES differ");

    // Served as JSON, equal to the file.
    let (status, served) = get_json(&app, "/openapi.json", false).await;
    assert_eq!(status, 200);
    assert_eq!(served, document);
    // Public routes say so in the description; authenticated ones do not.
    for route in ROUTES {
        let operation = &document["paths"][route.path][route.method.to_lowercase()];
        let declared = &operation["security"];
        let expected = match route.access {
            Access::Public => json!([]),
            // The document's default: HTTP Basic.
            Access::Basic => Value::Null,
            Access::KannelParams => {
                json!([{"kannel_username": [], "kannel_password": []}, {"basic": []}])
            }
        };
        assert_eq!(declared, &expected, "{} {}", route.method, route.path);
    }
}

/// The Postman collection has one request per route, no more.
#[test]
fn postman_collection_covers_every_route() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/sms2fa.postman_collection.json"
    );
    let collection: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    let mut requests = BTreeSet::new();
    for folder in collection["item"].as_array().expect("folders") {
        for item in folder["item"].as_array().expect("items") {
            let request = &item["request"];
            let raw = request["url"]["raw"].as_str().expect("url");
            let path = raw.trim_start_matches("{{baseUrl}}");
            // A query string is the request's, not the route's.
            let path = path.split('?').next().unwrap_or(path);
            // `{{requestID}}` and friends stand for the route's path parameter.
            let path = match path.split_once("{{") {
                Some((prefix, _)) => format!("{prefix}{{id}}"),
                None => path.to_owned(),
            };
            let method = request["method"].as_str().expect("method").to_owned();
            requests.insert((method, path));
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(requests, routed);
}
