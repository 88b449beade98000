//! The outside view of a running simulated modem: counters for tests and benchmarks, and
//! knobs a test turns while the modem runs (silence, registration, unplug, URC injection).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// How many received command lines [`SimStats::commands`] keeps; older ones are dropped
/// so that a long `serve --simulate` run does not grow without bound.
pub const COMMAND_HISTORY: usize = 10_000;

/// Counters of what a simulated modem saw on its serial line. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct SimStats {
    inner: Arc<StatsInner>,
}

#[derive(Default)]
struct StatsInner {
    at_commands: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    cmgs_commands: AtomicU64,
    submissions: AtomicU64,
    parts_accepted: AtomicU64,
    sms_completed: AtomicU64,
    pin_attempts: AtomicU64,
    cms_errors: AtomicU64,
    escapes: AtomicU64,
    history: Mutex<VecDeque<String>>,
}

/// A point-in-time copy of [`SimStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStatsSnapshot {
    /// Non-empty command lines received (each `AT...` terminated by `\r`).
    pub at_commands: u64,
    /// Every byte read from the line: commands, PDUs, Ctrl-Z, ESC, noise.
    pub bytes_received: u64,
    /// Every byte written: echo, replies, prompts, URCs.
    pub bytes_sent: u64,
    /// `AT+CMGS` commands received (whether or not a prompt followed).
    pub cmgs_commands: u64,
    /// PDUs or texts submitted with Ctrl-Z.
    pub submissions: u64,
    /// Submissions answered with `+CMGS: <mr>`.
    pub parts_accepted: u64,
    /// Complete SMS (all parts in) recorded in the log.
    pub sms_completed: u64,
    /// `AT+CPIN=...` commands received, right or wrong.
    pub pin_attempts: u64,
    /// `+CMS ERROR` final results sent.
    pub cms_errors: u64,
    /// Prompts cancelled with ESC.
    pub escapes: u64,
}

/// Which counter to bump; keeps the session code free of field plumbing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    AtCommands,
    BytesReceived,
    BytesSent,
    CmgsCommands,
    Submissions,
    PartsAccepted,
    SmsCompleted,
    PinAttempts,
    CmsErrors,
    Escapes,
}

impl SimStats {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> SimStatsSnapshot {
        let i = &self.inner;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStatsSnapshot {
            at_commands: get(&i.at_commands),
            bytes_received: get(&i.bytes_received),
            bytes_sent: get(&i.bytes_sent),
            cmgs_commands: get(&i.cmgs_commands),
            submissions: get(&i.submissions),
            parts_accepted: get(&i.parts_accepted),
            sms_completed: get(&i.sms_completed),
            pin_attempts: get(&i.pin_attempts),
            cms_errors: get(&i.cms_errors),
            escapes: get(&i.escapes),
        }
    }

    /// The most recent command lines received (up to [`COMMAND_HISTORY`]), oldest first,
    /// e.g. to assert that a PIN was never tried twice or which `AT+CNMI` variant won.
    pub fn commands(&self) -> Vec<String> {
        lock(&self.inner.history).iter().cloned().collect()
    }

    pub(crate) fn add(&self, counter: Counter, n: u64) {
        let i = &self.inner;
        let c = match counter {
            Counter::AtCommands => &i.at_commands,
            Counter::BytesReceived => &i.bytes_received,
            Counter::BytesSent => &i.bytes_sent,
            Counter::CmgsCommands => &i.cmgs_commands,
            Counter::Submissions => &i.submissions,
            Counter::PartsAccepted => &i.parts_accepted,
            Counter::SmsCompleted => &i.sms_completed,
            Counter::PinAttempts => &i.pin_attempts,
            Counter::CmsErrors => &i.cms_errors,
            Counter::Escapes => &i.escapes,
        };
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn record_command(&self, line: &str) {
        let mut history = lock(&self.inner.history);
        if history.len() == COMMAND_HISTORY {
            history.pop_front();
        }
        history.push_back(line.to_owned());
    }
}

impl fmt::Debug for SimStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

/// Handle to one simulated modem (or to every modem given clones of the same
/// [`SimOptions`](super::SimOptions): give each modem its own `SimHandle::new()` to tell
/// them apart). Control calls take effect immediately, also in a running session.
#[derive(Clone, Default)]
pub struct SimHandle {
    stats: SimStats,
    control: Arc<Control>,
}

struct Control {
    state: Mutex<ControlState>,
    /// Bumped on every change so that sessions waiting in `select!` wake up.
    changed: watch::Sender<u64>,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            changed: watch::Sender::new(0),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct ControlState {
    pub silent_until: Option<Instant>,
    pub registered: Option<bool>,
    /// Sessions started before this count was reached end when it grows.
    pub unplugs: u64,
    pub urcs: VecDeque<String>,
    /// SMS sent to the modem and not yet taken by the session: (sender, text).
    pub incoming: VecDeque<(String, String)>,
    /// Entries per memory, as the session last published them.
    pub storage: std::collections::BTreeMap<String, usize>,
}

impl SimHandle {
    pub fn new() -> Self {
        Self::default()
    }

    /// This modem's counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Stop answering anything (input is read and dropped) for `duration` from now. Like
    /// [`inject_urc`](Self::inject_urc), it reaches one session if several share the handle.
    pub fn silence_for(&self, duration: Duration) {
        self.update(|c| c.silent_until = Some(Instant::now() + duration));
    }

    /// Change the registration state seen through `+CREG`/`+CGREG`/`+CEREG` and `+COPS`,
    /// overriding [`SimOptions::registered`](super::SimOptions::registered).
    pub fn set_registered(&self, registered: bool) {
        self.update(|c| c.registered = Some(registered));
    }

    /// Write `line` as an unsolicited result code at the next moment the modem is idle.
    pub fn inject_urc(&self, line: impl Into<String>) {
        let line = line.into();
        self.update(|c| c.urcs.push_back(line));
    }

    /// An SMS from `sender` (`+digits`, digits or a name) reaches the modem: split into
    /// parts and stored or routed as `AT+CNMI` asks.
    pub fn receive_sms(&self, sender: impl Into<String>, text: impl Into<String>) {
        let sms = (sender.into(), text.into());
        self.update(|c| c.incoming.push_back(sms));
    }

    /// End every session running with this handle: `run` returns `Ok(())` and drops its
    /// stream, as when a dongle is pulled out. Sessions started later are unaffected.
    pub fn unplug(&self) {
        self.update(|c| c.unplugs += 1);
    }

    /// How many messages each memory (`SM`, `ME`, `SR`) holds, as of the last change.
    pub fn stored(&self) -> std::collections::BTreeMap<String, usize> {
        self.control().storage.clone()
    }

    pub(crate) fn publish_storage(&self, counts: std::collections::BTreeMap<String, usize>) {
        self.control().storage = counts;
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.control.changed.subscribe()
    }

    pub(crate) fn control(&self) -> MutexGuard<'_, ControlState> {
        lock(&self.control.state)
    }

    fn update(&self, change: impl FnOnce(&mut ControlState)) {
        change(&mut self.control());
        self.control.changed.send_modify(|g| *g = g.wrapping_add(1));
    }
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("stats", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

/// The guarded data stays consistent even if a holder panicked (every critical section
/// is a single push/pop/assignment), so a poisoned lock is safe to reuse.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
