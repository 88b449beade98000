//! Where the simulated network records the SMS it received: in memory for tests (with a
//! notifier for `wait_for`), and optionally as JSON lines in a file for people running
//! `tail -f` next to `serve --simulate`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use super::handle::SimStats;
use super::ReceivedSms;

/// Where the simulator records what it received: kept in memory, announced to waiters,
/// and (optionally) appended to a file as one JSON line per SMS. Clones share the same
/// log, so several simulated modems can record into one.
#[derive(Debug, Clone, Default)]
pub struct SmsLog {
    inner: Arc<SmsLogInner>,
}

#[derive(Debug, Default)]
struct SmsLogInner {
    path: Option<PathBuf>,
    state: Mutex<LogState>,
    /// Number of SMS recorded so far; `wait_for` waits on it.
    count: watch::Sender<usize>,
    stats: SimStats,
}

#[derive(Debug, Default)]
struct LogState {
    received: Vec<ReceivedSms>,
    /// Opened on the first SMS so that constructing a log never fails.
    file: Option<File>,
}

/// The JSON line written per SMS.
#[derive(serde::Serialize)]
struct LogLine<'a> {
    #[serde(flatten)]
    sms: &'a ReceivedSms,
    received_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SmsLogError {
    #[error("cannot append to the SMS log {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot serialise an SMS for the log: {0}")]
    Json(#[from] serde_json::Error),
}

impl SmsLog {
    /// Log in memory only.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Log in memory and append JSON lines to `path` (created on the first SMS).
    pub fn with_file(path: PathBuf) -> Self {
        Self {
            inner: Arc::new(SmsLogInner {
                path: Some(path),
                ..SmsLogInner::default()
            }),
        }
    }

    /// The JSON-lines file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Everything received so far, in arrival order.
    pub fn all(&self) -> Vec<ReceivedSms> {
        self.state().received.clone()
    }

    /// What was received after the first `seen`, in arrival order (a reader that
    /// keeps up with a long run without copying all of it each time).
    pub fn since(&self, seen: usize) -> Vec<ReceivedSms> {
        self.state()
            .received
            .get(seen..)
            .unwrap_or_default()
            .to_vec()
    }

    /// Counters summed over every simulated modem recording into this log (for
    /// benchmarks: AT commands and serial bytes per SMS).
    pub fn stats(&self) -> &SimStats {
        &self.inner.stats
    }

    /// Wait until at least `count` SMS have been received, or `timeout` passes; returns
    /// all received so far.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedSms> {
        let mut rx = self.inner.count.subscribe();
        // Timing out is a normal outcome here: the caller compares the length.
        let _ = tokio::time::timeout(timeout, rx.wait_for(|n| *n >= count)).await;
        self.all()
    }

    /// Record one SMS. It is kept in memory even when the file cannot be written.
    pub fn record(&self, sms: ReceivedSms) -> Result<(), SmsLogError> {
        let mut state = self.state();
        let written = match &self.inner.path {
            Some(path) => append_line(&mut state.file, path, &sms),
            None => Ok(()),
        };
        state.received.push(sms);
        let n = state.received.len();
        drop(state);
        self.inner.count.send_replace(n);
        written
    }

    fn state(&self) -> MutexGuard<'_, LogState> {
        // Every critical section leaves LogState consistent (a push or a file write), so
        // the data behind a poisoned lock is still valid.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn append_line(file: &mut Option<File>, path: &Path, sms: &ReceivedSms) -> Result<(), SmsLogError> {
    let line = LogLine {
        sms,
        received_at: chrono::Utc::now().to_rfc3339(),
    };
    let mut bytes = serde_json::to_vec(&line)?;
    bytes.push(b'\n');
    let io_err = |source| SmsLogError::Write {
        path: path.to_owned(),
        source,
    };
    let f = match file {
        Some(f) => f,
        None => file.insert(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io_err)?,
        ),
    };
    // One write call per line, unbuffered, so `tail -f` never sees half a line.
    f.write_all(&bytes).map_err(io_err)?;
    f.flush().map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(text: &str) -> ReceivedSms {
        ReceivedSms {
            number: "+46708251358".into(),
            text: text.into(),
            parts: 1,
            message_references: vec![0],
        }
    }

    #[tokio::test]
    async fn wait_for_wakes_on_record_and_times_out_otherwise() {
        let log = SmsLog::in_memory();
        let waiter = {
            let log = log.clone();
            tokio::spawn(async move { log.wait_for(2, Duration::from_secs(10)).await })
        };
        log.record(sms("a")).unwrap();
        log.record(sms("b")).unwrap();
        assert_eq!(waiter.await.unwrap().len(), 2);
        let got = log.wait_for(3, Duration::from_millis(10)).await;
        assert_eq!(got.len(), 2);
        assert_eq!(log.all()[1].text, "b");
    }

    #[test]
    fn file_gets_one_json_line_per_sms() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms.jsonl");
        let log = SmsLog::with_file(path.clone());
        log.record(sms("hello")).unwrap();
        log.record(sms("again")).unwrap();
        let content = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = content
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["number"], "+46708251358");
        assert_eq!(lines[0]["text"], "hello");
        assert_eq!(lines[0]["parts"], 1);
        assert_eq!(lines[0]["message_references"], serde_json::json!([0]));
        let at = lines[1]["received_at"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    }

    #[test]
    fn unwritable_file_still_keeps_the_sms_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let log = SmsLog::with_file(dir.path().join("missing/dir/sms.jsonl"));
        assert!(log.record(sms("x")).is_err());
        assert_eq!(log.all().len(), 1);
    }
}
