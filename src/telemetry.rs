//! Logging: to journald when systemd runs us (`$JOURNAL_STREAM`), each event with its
//! fields as journal fields (`MODEM=`, `MESSAGE_ID=`, `REQUEST_ID=`, `ERROR=`, …) and a
//! priority from its level; else readable lines on stderr. `RUST_LOG`, when set,
//! overrides the config's filter.

use std::fmt::Write as _;

use systemd_journal_logger::JournalLog;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}: {message}")]
    Filter { filter: String, message: String },
}

pub fn init(filter: &str) -> Result<(), TelemetryError> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_owned());
    let env_filter = EnvFilter::try_new(&filter).map_err(|e| TelemetryError::Filter {
        filter: filter.clone(),
        message: e.to_string(),
    })?;
    let journal_error = if std::env::var_os("JOURNAL_STREAM").is_some() {
        match JournalLog::new() {
            Ok(journal) => {
                let journal = journal.with_syslog_identifier("sms2fa".to_owned());
                // A second init (tests) keeps the first subscriber.
                let _ = tracing_subscriber::registry()
                    .with(JournalLayer { journal }.with_filter(env_filter))
                    .try_init();
                return Ok(());
            }
            Err(e) => Some(e),
        }
    } else {
        None
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    if let Some(e) = journal_error {
        // JOURNAL_STREAM can be inherited from a shell started by a service; stderr
        // still reaches whoever is reading.
        tracing::warn!(error = %e, "JOURNAL_STREAM is set but journald is unreachable; logging to stderr");
    }
    Ok(())
}

/// Sends each event to journald through systemd-journal-logger, whose `log::Record`
/// key-values become journal fields (upper-cased: `modem` → `MODEM`).
struct JournalLayer {
    journal: JournalLog,
}

/// The fields recorded on a span or an event, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Fields(Vec<(&'static str, String)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name(), format!("{value:?}")));
    }
}

impl<S> Layer<S> for JournalLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        // Span fields first (a request's REQUEST_ID), then the event's own.
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    fields.0.extend(span_fields.0.iter().cloned());
                }
            }
        }
        event.record(&mut fields);
        let (text, extra) = journal_entry(fields);
        let kv: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let meta = event.metadata();
        let level = match *meta.level() {
            tracing::Level::ERROR => log::Level::Error,
            tracing::Level::WARN => log::Level::Warn,
            tracing::Level::INFO => log::Level::Info,
            tracing::Level::DEBUG => log::Level::Debug,
            tracing::Level::TRACE => log::Level::Trace,
        };
        // Logging must not fail the caller; a journald hiccup loses one line.
        let _ = self.journal.journal_send(
            &log::Record::builder()
                .args(format_args!("{text}"))
                .level(level)
                .target(meta.target())
                .module_path(meta.module_path())
                .file(meta.file())
                .line(meta.line())
                .key_values(&kv)
                .build(),
        );
    }
}

/// The `MESSAGE` (the event's message followed by `key=value` for each field, so
/// `journalctl` shows the context too) and the fields to send as journal fields.
fn journal_entry(fields: Fields) -> (String, Vec<(&'static str, String)>) {
    let mut message = String::new();
    let mut extra = Vec::with_capacity(fields.0.len());
    for (name, value) in fields.0 {
        if name == "message" {
            message.insert_str(0, &value);
        } else {
            extra.push((name, value));
        }
    }
    for (name, value) in &extra {
        // Writing to a String cannot fail.
        let _ = write!(message, " {name}={value}");
    }
    (message, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_carries_the_fields_too() {
        let fields = Fields(vec![
            ("modem", "dongle0".to_owned()),
            ("message", "modem link down".to_owned()),
            ("message_id", "SM1".to_owned()),
        ]);
        let (text, extra) = journal_entry(fields);
        assert_eq!(text, "modem link down modem=dongle0 message_id=SM1");
        assert_eq!(
            extra,
            vec![
                ("modem", "dongle0".to_owned()),
                ("message_id", "SM1".to_owned())
            ]
        );
    }
}
