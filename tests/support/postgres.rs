//! A real PostgreSQL server for the tests, and a fresh database in it for each test.
//!
//! `SMS2FA_TEST_DATABASE_URL` (a superuser URL) names a server to use. Without it, the
//! first test that needs one starts a throwaway cluster from Debian's `postgresql`
//! package (`initdb` + `postgres` in a temp folder, as `nobody` when run as root, since
//! PostgreSQL refuses to run as root), shared by every test process of the run:
//! nextest runs each test in a process of its own, and one `initdb` per test would cost
//! seconds each. Every process that uses the cluster holds a shared `flock` on its
//! `users.lock` for as long as it lives; a small reaper started with the server stops
//! it and deletes its folder once nobody has held that lock for a few seconds, so the
//! cluster goes away with the test run that started it, however that run ends.
//!
//! Included by the library's unit tests and by the integration tests (`#[path]`), so
//! it uses nothing but std, libc and tokio-postgres.

#![allow(dead_code)]

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How a test reaches the server: a superuser URL without a database name.
#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub superuser: String,
    /// Where the cluster's files are, when we started it (tests may scan them).
    pub data_dir: Option<PathBuf>,
    pub bin_dir: Option<PathBuf>,
}

impl Server {
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://{}@{}:{}/{}",
            self.superuser, self.host, self.port, database
        )
    }
}

/// The shared server, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("SMS2FA_TEST_DATABASE_URL") {
        Ok(url) => given(&url),
        Err(_) => throwaway(),
    })
}

fn given(url: &str) -> Server {
    let config: tokio_postgres::Config = url.parse().expect("SMS2FA_TEST_DATABASE_URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        other => panic!("SMS2FA_TEST_DATABASE_URL: a TCP host, not {other:?}"),
    };
    Server {
        host,
        port: config.get_ports().first().copied().unwrap_or(5432),
        superuser: config.get_user().unwrap_or("postgres").to_owned(),
        data_dir: None,
        bin_dir: None,
    }
}

/// A database of its own for one test, dropped (best effort) with the value.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let server = server();
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let admin = admin(server).await;
        for statement in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin
                .batch_execute(&statement)
                .await
                .expect("create a test database");
        }
        Self {
            url: server.url(&name),
            name,
        }
    }
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Our own cluster goes away whole; a given server keeps only what we forget to
        // drop. A thread of its own: Drop may run inside a runtime.
        if server().data_dir.is_some() {
            return;
        }
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let admin = admin(server()).await;
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

/// A superuser connection to the `postgres` database.
pub async fn admin(server: &Server) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&server.url("postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect to the test server as superuser");
    tokio::spawn(connection);
    client
}

/// Where Debian keeps the server's programs: the newest `/usr/lib/postgresql/*/bin`,
/// unless `SMS2FA_PG_BIN` says otherwise.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SMS2FA_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server programs are not installed: `apt-get install postgresql` \
             (scripts/test.sh does it), or set SMS2FA_PG_BIN, or SMS2FA_TEST_DATABASE_URL"
        )
    })
}

/// The user the server runs as: ourselves, or `nobody` when we are root.
fn server_user() -> Option<(u32, u32)> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return None;
    }
    // SAFETY: getpwnam returns null or a pointer to a static record, read at once.
    let record = unsafe { libc::getpwnam(c"nobody".as_ptr()) };
    assert!(!record.is_null(), "no user `nobody` to run PostgreSQL as");
    // SAFETY: non-null, checked above.
    Some(unsafe { ((*record).pw_uid, (*record).pw_gid) })
}

pub fn as_server_user(command: &mut Command) -> &mut Command {
    if let Some((uid, gid)) = server_user() {
        // std drops the supplementary groups too when it changes the user from root.
        command.uid(uid).gid(gid);
    }
    command
}

pub fn chown_to_server_user(path: &Path) {
    if let Some((uid, gid)) = server_user() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    }
}

fn flock(file: &File, operation: i32) -> bool {
    // SAFETY: flock on an open descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), operation) == 0 }
}

/// Start (or join) the run's shared cluster.
fn throwaway() -> Server {
    let bin = bin_dir();
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let root = std::env::temp_dir().join(format!("sms2fa-test-pg-{uid}"));
    std::fs::create_dir_all(&root).expect("test cluster folder");
    // The server and its reaper run as `nobody` when we are root: they write their log
    // here, and the reaper deletes the folder's contents at the end.
    let mode = if server_user().is_some() {
        0o777
    } else {
        0o755
    };
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(mode)).expect("chmod");
    // Held shared for the life of this process: the reaper stops the server once no
    // process holds it. Taken before looking at the server, so the reaper cannot stop
    // it between our look and our use.
    let users = File::options()
        .create(true)
        .append(true)
        .open(root.join("users.lock"))
        .expect("users.lock");
    assert!(flock(&users, libc::LOCK_SH), "lock users.lock");
    static USERS: OnceLock<File> = OnceLock::new();
    let _ = USERS.set(users);

    let setup = File::options()
        .create(true)
        .append(true)
        .open(root.join("setup.lock"))
        .expect("setup.lock");
    assert!(flock(&setup, libc::LOCK_EX), "lock setup.lock");
    let port_file = root.join("port");
    let data = root.join("data");
    let running = std::fs::read_to_string(&port_file)
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|&port| ready(&bin, port));
    let port = match running {
        Some(port) => port,
        None => start(&bin, &root, &data, &port_file),
    };
    flock(&setup, libc::LOCK_UN);
    Server {
        host: "127.0.0.1".into(),
        port,
        superuser: "postgres".into(),
        data_dir: Some(data),
        bin_dir: Some(bin),
    }
}

/// Whether the server accepts sessions (not merely TCP connections: it does that
/// while still starting up).
pub fn ready(bin: &Path, port: u16) -> bool {
    Command::new(bin.join("pg_isready"))
        .args(["-q", "-h", "127.0.0.1", "-t", "2", "-p", &port.to_string()])
        .status()
        .is_ok_and(|status| status.success())
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

fn start(bin: &Path, root: &Path, data: &Path, port_file: &Path) -> u16 {
    let _ = std::fs::remove_dir_all(data);
    std::fs::create_dir_all(data).expect("data folder");
    chown_to_server_user(data);
    let status = as_server_user(Command::new(bin.join("initdb")).args([
        "--no-sync",
        "--auth=trust",
        "--username=postgres",
        "--encoding=UTF8",
        "--locale=C",
        "-D",
    ]))
    .arg(data)
    .stdout(std::process::Stdio::null())
    .status()
    .expect("run initdb");
    assert!(status.success(), "initdb failed: {status}");
    // Password logins for every role but the superuser, so tests can check a wrong
    // password; the superuser logs in by trust from loopback.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\n\
         host all postgres 127.0.0.1/32 trust\n\
         host all all 127.0.0.1/32 scram-sha-256\n",
    )
    .expect("pg_hba.conf");
    let port = free_port();
    // Durability is not what these tests check: fsync off keeps them fast.
    let settings = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
         -c max_connections=400 -c shared_buffers=64MB",
        data.display()
    );
    // The reaper: the server in the background, stopped and deleted once no test
    // process has held users.lock for two checks in a row (with setup.lock held, so a
    // process starting meanwhile waits for the teardown and then starts afresh).
    let script = format!(
        r#"
        "{postgres}" -D "{data}" {settings} >"{root}/server.log" 2>&1 &
        server=$!
        idle=0
        while kill -0 "$server" 2>/dev/null; do
            sleep 2
            exec 8>>"{root}/setup.lock"
            flock -x 8
            if flock -n -x "{root}/users.lock" true; then idle=$((idle + 1)); else idle=0; fi
            if [ "$idle" -ge 2 ]; then
                kill -INT "$server"; wait "$server"
                rm -rf "{data}" "{root}/port"
                exit 0
            fi
            exec 8>&-
        done
        "#,
        postgres = bin.join("postgres").display(),
        data = data.display(),
        root = root.display(),
    );
    // Run in the background of a shell that exits at once (and is waited for), so the
    // reaper is nobody's child here.
    let detached = format!("(\n{script}\n) </dev/null >/dev/null 2>&1 &");
    let mut reaper = Command::new("sh");
    reaper
        .args(["-c", &detached])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // The server as `nobody`, the reaper with it (it only needs the lock files, which
    // it opens for appending: make them writable).
    for lock in ["users.lock", "setup.lock"] {
        let path = root.join(lock);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    }
    as_server_user(&mut reaper);
    // A session of its own: the test process's end must not take the server along.
    // SAFETY: setsid is async-signal-safe; called between fork and exec.
    unsafe {
        reaper.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let started = reaper.status().expect("start the test PostgreSQL");
    assert!(
        started.success(),
        "cannot start the test PostgreSQL: {started}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(bin, port) {
        assert!(
            Instant::now() < deadline,
            "the test PostgreSQL did not start; see {}/server.log",
            root.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(port_file, port.to_string()).expect("port file");
    port
}

/// A cluster of its own with durability as shipped (fsync and synchronous commit on),
/// run in the foreground as the server user and stopped (SIGKILL) when dropped: for
/// benchmarks that compare stores fairly, and suites that kill the server on purpose.
pub struct Cluster {
    pub port: u16,
    pub data: PathBuf,
    pub child: std::process::Child,
}

impl Cluster {
    /// `initdb` in `data` (created), `extra` appended to its postgresql.conf, started.
    pub fn start(data: &Path, extra: &str) -> Self {
        let bin = bin_dir();
        std::fs::create_dir_all(data).expect("data folder");
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        chown_to_server_user(data);
        let status = as_server_user(&mut Command::new(bin.join("initdb")))
            .args(["--auth=trust", "--username=postgres", "--locale=C", "-D"])
            .arg(data)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("initdb");
        assert!(status.success(), "initdb failed");
        let port = free_port();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 200\nshared_buffers = 256MB\n{extra}\n",
            data.display()
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("postgresql.conf");
        std::io::Write::write_all(&mut file, conf.as_bytes()).expect("write conf");
        let log = File::create(data.with_extension("log")).expect("log");
        let child = as_server_user(&mut Command::new(bin.join("postgres")))
            .arg("-D")
            .arg(data)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(&bin, port) {
            assert!(Instant::now() < deadline, "postgres does not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            port,
            data: data.to_owned(),
            child,
        }
    }

    /// A superuser URL of `database` (created first when it is not `postgres`).
    pub async fn database(&self, database: &str) -> String {
        let url = |db: &str| format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port);
        if database != "postgres" {
            let (client, connection) =
                tokio_postgres::connect(&url("postgres"), tokio_postgres::NoTls)
                    .await
                    .expect("connect");
            tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE DATABASE {database}"))
                .await
                .expect("create database");
        }
        url(database)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
