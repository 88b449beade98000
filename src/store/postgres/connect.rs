//! From `[storage] url` and `password_file` to a pool of connections: libpq's URL
//! (several hosts, `target_session_attrs=read-write` to follow the primary through a
//! switchover), TLS per `sslmode`, and bounds on every wait so that a database that is
//! away gives an error in seconds rather than a hang.

use std::path::{Path, PathBuf};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::config::SslMode;

use super::tls::{self, Verify};

/// How long a new connection may take (per host of the URL).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a connection from the pool.
const POOL_WAIT: Duration = Duration::from_secs(5);
/// A statement running longer than this is cancelled by the server: a stuck lock or a
/// hung server becomes an error, not a request that never ends.
const STATEMENT_TIMEOUT_MS: u32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("not a PostgreSQL URL: {0}")]
    Url(String),
    #[error("sslmode={0:?} is not one of disable, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    #[error("cannot read the database password from {path}: {source}")]
    Password {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(String),
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
}

/// Where and how to connect, password aside.
#[derive(Clone)]
pub struct ConnectOptions {
    config: tokio_postgres::Config,
    verify: Verify,
    root_cert: Option<PathBuf>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl ConnectOptions {
    /// Parse a `postgresql://` (or `postgres://`) URL. tokio-postgres reads everything
    /// but the verifying `sslmode`s and `sslrootcert`, which are taken out here.
    pub fn parse(url: &str) -> Result<Self, ConnectError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        if !(base.starts_with("postgresql://") || base.starts_with("postgres://")) {
            return Err(ConnectError::Url(
                "it must start with postgresql:// (libpq's URL form)".into(),
            ));
        }
        let mut kept = Vec::new();
        let mut sslmode = None;
        let mut root_cert = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => sslmode = Some(percent_decode(value)),
                "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(value))),
                _ => kept.push(pair),
            }
        }
        let (mode, verify) = match sslmode.as_deref().unwrap_or("prefer") {
            "disable" => (SslMode::Disable, Verify::Nothing),
            "prefer" => (SslMode::Prefer, Verify::Nothing),
            // libpq: `require` with a root certificate verifies as `verify-ca` does.
            "require" if root_cert.is_some() => (SslMode::Require, Verify::Chain),
            "require" => (SslMode::Require, Verify::Nothing),
            "verify-ca" => (SslMode::Require, Verify::Chain),
            "verify-full" => (SslMode::Require, Verify::ChainAndName),
            other => return Err(ConnectError::SslMode(other.to_owned())),
        };
        let rebuilt = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config: tokio_postgres::Config = rebuilt
            .parse()
            // The parser's message names the option at fault and never the password.
            .map_err(|e: tokio_postgres::Error| {
                let cause = std::error::Error::source(&e).map(|c| format!(": {c}"));
                ConnectError::Url(format!("{e}{}", cause.unwrap_or_default()))
            })?;
        config.ssl_mode(mode);
        if config.get_hosts().is_empty() {
            return Err(ConnectError::Url("it names no host".into()));
        }
        if config.get_dbname().is_none() {
            return Err(ConnectError::Url(
                "it names no database (postgresql://user@host/DATABASE)".into(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_options().is_none() {
            config.options(format!(
                "-c statement_timeout={STATEMENT_TIMEOUT_MS} \
                 -c idle_in_transaction_session_timeout={}",
                STATEMENT_TIMEOUT_MS * 3
            ));
        }
        Ok(Self {
            config,
            verify,
            root_cert,
        })
    }

    /// Hosts, database and user, for messages: never the password.
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .zip(
                self.config
                    .get_ports()
                    .iter()
                    .chain(std::iter::repeat(&5432)),
            )
            .map(|(host, port)| match host {
                tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        format!(
            "{}/{} as {}",
            hosts.join(","),
            self.config.get_dbname().unwrap_or("?"),
            self.config.get_user().unwrap_or("?")
        )
    }

    /// Take the password from `password_file`, else from systemd's credential
    /// `sms2fa-db-password`, unless the URL carries one.
    pub fn with_password_from(
        mut self,
        password_file: Option<&Path>,
    ) -> Result<Self, ConnectError> {
        if self.config.get_password().is_some() {
            return Ok(self);
        }
        let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(|dir| PathBuf::from(dir).join("sms2fa-db-password"))
            .filter(|path| path.exists());
        let Some(path) = password_file.map(Path::to_owned).or(credential) else {
            return Ok(self);
        };
        let password = std::fs::read_to_string(&path).map_err(|source| ConnectError::Password {
            path: path.clone(),
            source,
        })?;
        let password = password.strip_suffix('\n').unwrap_or(&password);
        let password = password.strip_suffix('\r').unwrap_or(password);
        self.config.password(password);
        Ok(self)
    }

    pub fn application_name(mut self, name: &str) -> Self {
        self.config.application_name(name);
        self
    }

    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// A pool of at most `size` connections. Connections are made on demand: building
    /// the pool does not touch the network.
    pub fn pool(&self, size: usize) -> Result<Pool, ConnectError> {
        let tls =
            tls::connector(self.verify, self.root_cert.as_deref()).map_err(ConnectError::Tls)?;
        let manager = Manager::from_config(
            self.config.clone(),
            tls,
            ManagerConfig {
                // A connection that broke (server restarted, switchover) is noticed by
                // its closed socket, and replaced.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(POOL_WAIT),
                create: Some(CONNECT_TIMEOUT * 2),
                recycle: Some(CONNECT_TIMEOUT),
            })
            .build()
            .map_err(|e| ConnectError::Pool(e.to_string()))
    }
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_hosts_the_session_attrs_and_the_verifying_modes() {
        let options = ConnectOptions::parse(
            "postgresql://sms2fa@db1:5432,db2:5433/sms2fa?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(options.describe(), "db1:5432,db2:5433/sms2fa as sms2fa");
        assert_eq!(options.verify, Verify::ChainAndName);
        assert_eq!(options.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(options.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            options.config.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
        let ca = ConnectOptions::parse("postgresql://u@h/d?sslmode=verify-ca").unwrap();
        assert_eq!(ca.verify, Verify::Chain);
        let require = ConnectOptions::parse("postgresql://u@h/d?sslmode=require").unwrap();
        assert_eq!(require.verify, Verify::Nothing);
    }

    #[test]
    fn bad_urls_say_what_is_wrong_and_never_echo_the_password() {
        for (url, says) in [
            ("mysql://u@h/d", "postgresql://"),
            ("postgresql://u@h/d?sslmode=verify", "sslmode"),
            ("postgresql://u:hunter2@h/d?bogus=1", "bogus"),
            ("postgresql://u:hunter2@h", "no database"),
        ] {
            let error = ConnectOptions::parse(url).unwrap_err().to_string();
            assert!(error.contains(says), "{url}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn a_password_file_loses_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let options = ConnectOptions::parse("postgresql://u@h/d")
            .unwrap()
            .with_password_from(Some(&file))
            .unwrap();
        assert_eq!(options.config.get_password(), Some(&b"s3cret"[..]));
        assert!(!format!("{options:?}").contains("s3cret"));
        let missing = ConnectOptions::parse("postgresql://u@h/d")
            .unwrap()
            .with_password_from(Some(&dir.path().join("absent")))
            .unwrap_err();
        assert!(missing.to_string().contains("absent"), "{missing}");
    }
}
