//! `sms2fa check-config` with `backend = "postgres"`: reachable or not, logged in or
//! not, at which schema version — and never the password in what it prints.

use std::path::Path;
use std::process::Command;

use crate::postgres_server::{admin, server, TestDatabase};

const BIN: &str = env!("CARGO_BIN_EXE_sms2fa");

fn config(dir: &Path, url: &str, password_file: Option<&Path>) -> std::path::PathBuf {
    let path = dir.join("sms2fa.toml");
    let password = password_file
        .map(|p| format!("password_file = {:?}\n", p.display().to_string()))
        .unwrap_or_default();
    std::fs::write(
        &path,
        format!(
            "[storage]\nbackend = \"postgres\"\npath = {:?}\nurl = {url:?}\n{password}\n\
             [cluster]\nnode = \"gw-a\"\n\n\
             [[account]]\nsid = \"AC1\"\ntoken = \"t\"\n\n\
             [[modem]]\nname = \"m0\"\ndevice = \"/dev/null\"\n",
            dir.display().to_string()
        ),
    )
    .expect("write config");
    path
}

fn check(path: &Path) -> (bool, String) {
    let output = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(path)
        .output()
        .expect("run check-config");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn an_empty_database_will_be_migrated_a_migrated_one_is_current() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = config(dir.path(), &database.url, None);
    let (ok, text) = check(&path);
    assert!(ok, "{text}");
    assert!(text.contains("empty, will be migrated at start"), "{text}");
    assert!(text.contains("as node \"gw-a\""), "{text}");

    // What a start does to it (the same migration), then check-config again.
    let storage = sms2fa::config::Config::load(&path).expect("config").storage;
    let options = sms2fa::store::connect_options(&storage).expect("options");
    let key = sms2fa::otp::SecretKey::from_bytes([1; 32]);
    sms2fa::store::postgres::PgStore::open(
        &options,
        1,
        &key,
        std::sync::Arc::new(sms2fa::otp::SystemClock),
        "gw-a",
        std::time::Duration::from_secs(15),
    )
    .await
    .expect("migrate");
    let (ok, text) = check(&path);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!(
            "schema version {} (current)",
            sms2fa::store::postgres::migrate::LATEST
        )),
        "{text}"
    );
}

#[tokio::test]
async fn a_wrong_password_or_no_server_fails_with_the_reason_and_not_the_password() {
    let database = TestDatabase::create().await;
    let server = server();
    let role = format!("r{}", database.name);
    admin(server)
        .await
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'right-password'; \
             GRANT ALL ON DATABASE {} TO {role}",
            database.name
        ))
        .await
        .expect("role");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "postgresql://{role}@{}:{}/{}",
        server.host, server.port, database.name
    );

    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "wrong-password\n").expect("write");
    let (ok, text) = check(&config(dir.path(), &url, Some(&wrong)));
    assert!(!ok, "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("wrong-password"), "{text}");

    let right = dir.path().join("right");
    std::fs::write(&right, "right-password\n").expect("write");
    let (ok, text) = check(&config(dir.path(), &url, Some(&right)));
    assert!(
        ok,
        "a trailing newline in the password file is ignored: {text}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let nobody = format!("postgresql://{role}@127.0.0.1:{closed}/{}", database.name);
    let (ok, text) = check(&config(dir.path(), &nobody, Some(&right)));
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("127.0.0.1:{closed}")), "{text}");
    assert!(!text.contains("right-password"), "{text}");
}
