//! What only the shared backend has: several hosts on one database (leases, fencing,
//! routing by `from`, one name per process), the key every host must share, and the
//! schema's migrations. Its single-host behaviour is the shared suite's
//! (`store::tests`).

use std::sync::Arc;

use chrono::Duration;

use super::{migrate, ConnectOptions, PgStore};
use crate::otp::{ManualClock, SecretKey};
use crate::store::tests::fixture::postgres_server::TestDatabase;
use crate::store::tests::{claim, issue, new_code, Fixture};
use crate::store::{ClusterStore, MessageStatus, ModemBeat, Store, StoreError};

fn key() -> SecretKey {
    crate::store::tests::fixture::key()
}

async fn open(
    url: &str,
    key: &SecretKey,
    node: &str,
    lease_secs: u64,
) -> Result<PgStore, StoreError> {
    let options = ConnectOptions::parse(url).expect("url");
    PgStore::open(
        &options,
        4,
        key,
        Arc::new(ManualClock::default()),
        node,
        std::time::Duration::from_secs(lease_secs),
    )
    .await
}

fn history_details(record: &crate::store::MessageRecord) -> Vec<String> {
    record
        .history
        .iter()
        .filter_map(|t| t.detail.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_hosts_claims_go_back_after_its_lease_and_its_late_writes_change_nothing() {
    let fx = Fixture::postgres().await;
    let a = fx.store.clone();
    let b = fx.host("gw-b").await;
    issue(&*a, &new_code("SM1", "+15551111111", 1)).await;
    fx.advance(Duration::milliseconds(5));
    issue(&*a, &new_code("SM2", "+15552222222", 2)).await;
    // Host A claims SM1 and dies before its modem gets it; it claims SM2 and dies
    // with the PDU handed to the modem.
    let claimed = claim(&*a).await;
    let submitting = claim(&*a).await;
    assert_eq!(
        (claimed.message.id.as_str(), submitting.message.id.as_str()),
        ("SM1", "SM2")
    );
    assert!(a.begin_submit(&submitting.lease).await.unwrap());

    assert_eq!(
        b.reclaim_expired().await.unwrap(),
        0,
        "A's leases still run"
    );
    fx.advance(Duration::seconds(16));
    assert_eq!(b.reclaim_expired().await.unwrap(), 2);
    let quiet = b.message("SM1").await.unwrap().unwrap();
    assert_eq!(quiet.status, MessageStatus::Queued);
    assert!(
        history_details(&quiet)
            .iter()
            .all(|d| !d.contains("may arrive twice")),
        "{quiet:?}"
    );
    let noisy = b.message("SM2").await.unwrap().unwrap();
    assert!(
        history_details(&noisy)
            .iter()
            .any(|d| d.contains("host test-host") && d.contains("may arrive twice")),
        "{noisy:?}"
    );

    // B sends both. A comes back to life and reports its old sends: fenced off.
    let first = claim(&*b).await;
    let second = claim(&*b).await;
    assert!(first.lease.token > submitting.lease.token);
    assert!(b
        .mark_sent(&first.lease, &first.message, "m-b", vec![1])
        .await
        .unwrap());
    assert!(!a
        .mark_sent(&claimed.lease, &claimed.message, "m0", vec![9])
        .await
        .unwrap());
    assert!(!a
        .mark_failed(&submitting.lease, Some("m0"), "late")
        .await
        .unwrap());
    assert!(!a.begin_submit(&submitting.lease).await.unwrap());
    assert!(!a.renew(&submitting.lease).await.unwrap());
    let due = fx.clock_now();
    assert!(!a
        .retry_later(
            &submitting.lease,
            &submitting.message,
            Some("m0"),
            "late",
            due
        )
        .await
        .unwrap());
    assert!(b
        .mark_sent(&second.lease, &second.message, "m-b", vec![2])
        .await
        .unwrap());
    for id in ["SM1", "SM2"] {
        let record = b.message(id).await.unwrap().unwrap();
        assert_eq!(record.status, MessageStatus::Sent, "{record:?}");
        assert_eq!(record.history.last().unwrap().modem.as_deref(), Some("m-b"));
    }
    assert_eq!(b.queue_depth().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_from_another_hosts_sim_is_left_to_it_while_that_host_is_alive() {
    let fx = Fixture::postgres().await;
    let a = fx.store.clone();
    let b = fx.host("gw-b").await;
    let beat = |ready| ModemBeat {
        name: "m-b".into(),
        number: Some("+15550000000".into()),
        ready,
        status: serde_json::json!({"name": "m-b"}),
    };
    b.heartbeat(&[beat(true)]).await.unwrap();
    a.heartbeat(&[]).await.unwrap();
    // new_code sends from +15550000000: B's SIM.
    issue(&*a, &new_code("SM1", "+15551111111", 1)).await;
    assert!(
        a.claim_next(&|_| Some("m-a".into()))
            .await
            .unwrap()
            .is_none(),
        "A leaves it to B"
    );
    // B's modem goes down: anyone may take it.
    b.heartbeat(&[beat(false)]).await.unwrap();
    let taken = claim(&*a).await;
    assert_eq!(taken.message.id, "SM1");
    a.retry_later(&taken.lease, &taken.message, None, "test", fx.clock_now())
        .await
        .unwrap();
    // B up again, then silent past its lease: A takes it.
    b.heartbeat(&[beat(true)]).await.unwrap();
    assert!(a
        .claim_next(&|_| Some("m-a".into()))
        .await
        .unwrap()
        .is_none());
    fx.advance(Duration::seconds(16));
    a.heartbeat(&[]).await.unwrap();
    assert_eq!(claim(&*a).await.message.id, "SM1");

    let hosts = a.hosts().await.unwrap();
    let names: Vec<(&str, bool)> = hosts.iter().map(|h| (h.node.as_str(), h.down)).collect();
    assert_eq!(names, vec![("gw-b", true), ("test-host", false)]);
    assert_eq!(
        hosts[0].modems,
        vec![("m-b".to_owned(), serde_json::json!({"name": "m-b"}))]
    );
}

#[tokio::test]
async fn a_host_with_another_key_is_refused_and_so_is_a_second_process_under_one_name() {
    let database = TestDatabase::create().await;
    let a = open(&database.url, &key(), "gw-a", 5)
        .await
        .expect("first host");
    let other = SecretKey::from_bytes([9; 32]);
    let refused = open(&database.url, &other, "gw-b", 5).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::KeyMismatch { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("secret.key"), "{refused}");

    // A second process as gw-a while the first keeps beating: refused after the wait.
    let beating = {
        let a = a.clone();
        tokio::spawn(async move {
            loop {
                let _ = a.heartbeat(&[]).await;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        })
    };
    let started = std::time::Instant::now();
    let twin = open(&database.url, &key(), "gw-a", 5).await.unwrap_err();
    beating.abort();
    assert!(matches!(twin, StoreError::NodeTaken { .. }), "{twin}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(5));
    // A clean stop lets the name go at once.
    a.close().await.unwrap();
    let started = std::time::Instant::now();
    open(&database.url, &key(), "gw-a", 5)
        .await
        .expect("after a clean stop");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let database = TestDatabase::create().await;
    let starts: Vec<_> = (0..4)
        .map(|i| {
            let url = database.url.clone();
            tokio::spawn(async move { open(&url, &key(), &format!("gw-{i}"), 5).await })
        })
        .collect();
    for start in starts {
        start.await.unwrap().expect("every host starts");
    }
    let options = ConnectOptions::parse(&database.url).unwrap();
    assert_eq!(
        PgStore::inspect(&options).await.unwrap(),
        super::SchemaState::At(migrate::LATEST)
    );
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let applied: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, migrate::LATEST);
    client
        .execute(
            "INSERT INTO schema_migrations (version, name) VALUES (99, 'future')",
            &[],
        )
        .await
        .unwrap();
    let refused = open(&database.url, &key(), "gw-9", 5).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::SchemaTooNew { found: 99, .. }),
        "{refused}"
    );
}

/// A CA, and a server certificate it signed for `names` (IP addresses or DNS names):
/// (CA PEM, certificate PEM, key PEM).
fn certificates(names: &[&str]) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Whether a connection per `url` is made, and whether it is encrypted.
async fn encrypted(url: &str) -> Result<bool, String> {
    let options = ConnectOptions::parse(url).map_err(|e| e.to_string())?;
    let pool = options.pool(1).map_err(|e| e.to_string())?;
    let client = pool
        .get()
        .await
        .map_err(|e| super::error::from_pool(e).to_string())?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn tls_keeps_libpqs_meanings_of_require_verify_ca_and_verify_full() {
    use crate::store::tests::fixture::postgres_server::{chown_to_server_user, Cluster};
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tls = root.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    // A certificate for 127.0.0.1 and one for another name, each from a CA of its own.
    let (ca, cert, key) = certificates(&["127.0.0.1"]);
    let (other_ca, _, _) = certificates(&["127.0.0.1"]);
    for (name, pem, mode) in [
        ("ca.pem", &ca, 0o644),
        ("other-ca.pem", &other_ca, 0o644),
        ("server.pem", &cert, 0o644),
        ("server.key", &key, 0o600),
    ] {
        let path = tls.join(name);
        std::fs::write(&path, pem).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        chown_to_server_user(&path);
    }
    chown_to_server_user(&tls);
    let cluster = Cluster::start(
        &root.path().join("pg"),
        &format!(
            "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'",
            tls.join("server.pem").display(),
            tls.join("server.key").display()
        ),
    );
    let url = |host: &str, query: &str| {
        format!(
            "postgresql://postgres@{host}:{}/postgres?{query}",
            cluster.port
        )
    };
    let ca_file = tls.join("ca.pem").display().to_string();
    let other_file = tls.join("other-ca.pem").display().to_string();

    assert_eq!(
        encrypted(&url("127.0.0.1", "sslmode=disable")).await,
        Ok(false)
    );
    assert_eq!(
        encrypted(&url("127.0.0.1", "sslmode=require")).await,
        Ok(true)
    );
    assert_eq!(
        encrypted(&url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca_file}")
        ))
        .await,
        Ok(true)
    );
    // `localhost` is not a name the certificate holds: verify-ca passes (the chain
    // is good), verify-full does not.
    assert_eq!(
        encrypted(&url(
            "localhost",
            &format!("sslmode=verify-ca&sslrootcert={ca_file}")
        ))
        .await,
        Ok(true)
    );
    let wrong_name = encrypted(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca_file}"),
    ))
    .await;
    assert!(wrong_name.is_err(), "{wrong_name:?}");
    let wrong_ca = encrypted(&url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={other_file}"),
    ))
    .await;
    assert!(wrong_ca.is_err(), "{wrong_ca:?}");
    // libpq: require with a root certificate checks the chain too.
    let require_checks = encrypted(&url(
        "127.0.0.1",
        &format!("sslmode=require&sslrootcert={other_file}"),
    ))
    .await;
    assert!(require_checks.is_err(), "{require_checks:?}");
}
