//! Logging: to journald (with priorities) when systemd runs us, else readable lines on
//! stderr. `RUST_LOG`, when set, overrides the config's filter.

use tracing_subscriber::EnvFilter;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}: {message}")]
    Filter { filter: String, message: String },
    #[error("cannot connect to journald: {0}")]
    Journal(std::io::Error),
}

pub fn init(filter: &str) -> Result<(), TelemetryError> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_owned());
    let env_filter = EnvFilter::try_new(&filter).map_err(|e| TelemetryError::Filter {
        filter: filter.clone(),
        message: e.to_string(),
    })?;
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        // tracing's `log` feature turns events into `log` records when no tracing
        // subscriber is installed; systemd-journal-logger sends those to journald with
        // their priority.
        systemd_journal_logger::JournalLog::new()
            .map_err(TelemetryError::Journal)?
            .with_syslog_identifier("sms2fa".to_owned())
            .install()
            .map_err(|e| TelemetryError::Journal(std::io::Error::other(e)))?;
        log::set_max_level(max_level(&env_filter));
        return Ok(());
    }
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .try_init();
    Ok(())
}

fn max_level(filter: &EnvFilter) -> log::LevelFilter {
    match filter.max_level_hint() {
        Some(level) if level >= tracing::level_filters::LevelFilter::TRACE => {
            log::LevelFilter::Trace
        }
        Some(level) if level >= tracing::level_filters::LevelFilter::DEBUG => {
            log::LevelFilter::Debug
        }
        Some(level) if level >= tracing::level_filters::LevelFilter::INFO => log::LevelFilter::Info,
        Some(level) if level >= tracing::level_filters::LevelFilter::WARN => log::LevelFilter::Warn,
        Some(level) if level >= tracing::level_filters::LevelFilter::ERROR => {
            log::LevelFilter::Error
        }
        Some(_) => log::LevelFilter::Off,
        None => log::LevelFilter::Trace,
    }
}
