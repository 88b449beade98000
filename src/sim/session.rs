//! The IO loop of one simulated modem: reads bytes, runs commands, writes replies, and
//! keeps the timers (boot, silence, radio time, delivery reports, URC storms). It sleeps
//! only until the next timer that can fire in the current state, and not at all when
//! none is armed.

use std::collections::VecDeque;
use std::io;
use std::mem;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

use super::commands;
use super::handle::Counter;
use super::reply::{push_line, Final, Reply};
use super::report;
use super::state::{Action, Input, Modem};
use super::storage::StoredPdu;
use super::submit::Part;
use super::{SimOptions, SmsLog};

const CTRL_Z: u8 = 0x1A;
const ESC: u8 = 0x1B;
const BACKSPACE: u8 = 0x08;
/// Longer command lines are answered `ERROR`; longer bodies fail to decode. Both bound
/// memory whatever a peer writes.
const MAX_LINE: usize = 1024;
const MAX_BODY: usize = 4096;
/// Input arriving while the modem is busy sending is held up to this much, like a real
/// modem's UART buffer; the excess is lost.
const MAX_UNREAD: usize = 64 * 1024;

enum Mode {
    Command,
    Prompt(Input),
}

/// A submission waiting for its radio time.
struct Pending {
    due: Instant,
    outcome: Result<Part, u16>,
    /// False when a scripted silence swallows the answer.
    answer: bool,
}

struct Storm {
    next: Option<Instant>,
    index: usize,
}

/// How long the simulated network takes to answer a USSD request.
const USSD_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

pub struct Session<S> {
    stream: S,
    options: SimOptions,
    log: SmsLog,
    modem: Modem,
    mode: Mode,
    /// The command line or prompt body being collected.
    line: Vec<u8>,
    /// Bytes read but not yet handled (the modem is busy with a send).
    unread: VecDeque<u8>,
    silent_until: Option<Instant>,
    pending: Option<Pending>,
    /// Unsolicited codes waiting for an idle moment, sorted by due time.
    urcs: Vec<(Instant, Vec<u8>)>,
    storm: Storm,
    submissions: u64,
    control: watch::Receiver<u64>,
    unplugs_at_start: u64,
    /// SMS-DELIVER parts the network holds for the modem (its storage was full).
    at_network: VecDeque<Vec<u8>>,
    /// Concatenation reference of the next received multi-part SMS.
    next_reference: u16,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub fn new(stream: S, options: SimOptions, log: SmsLog) -> Self {
        let now = Instant::now();
        let control = options.handle.subscribe();
        let unplugs_at_start = options.handle.control().unplugs;
        let storm_next = options
            .urc_storm
            .as_ref()
            .filter(|s| !s.interval.is_zero() && !s.lines.is_empty())
            .map(|s| now + options.boot_delay + s.interval);
        let mut session = Self {
            stream,
            modem: Modem::new(&options),
            mode: Mode::Command,
            line: Vec::new(),
            unread: VecDeque::new(),
            silent_until: (!options.boot_delay.is_zero()).then(|| now + options.boot_delay),
            pending: None,
            urcs: Vec::new(),
            storm: Storm {
                next: storm_next,
                index: 0,
            },
            submissions: 0,
            control,
            unplugs_at_start,
            at_network: VecDeque::new(),
            next_reference: 1,
            options,
            log,
        };
        session.booted(now);
        session
    }

    /// Queue the boot output for the moment the boot delay ends.
    fn booted(&mut self, now: Instant) {
        if !self.options.boot_output.is_empty() {
            let output = self.options.boot_output.clone();
            self.schedule_urc(now + self.options.boot_delay, output);
        }
    }

    pub async fn run(mut self) -> io::Result<()> {
        let mut buf = [0u8; 1024];
        self.publish_storage();
        loop {
            if self.apply_control() {
                return Ok(());
            }
            let mut out = Vec::new();
            // With no radio time a send completes at once: answer it and go on with the
            // input behind it without a round trip through the timer.
            loop {
                self.fire_timers(Instant::now(), &mut out);
                self.process_input(&mut out);
                let now = Instant::now();
                if self.pending.as_ref().is_none_or(|p| p.due > now) {
                    break;
                }
            }
            self.write(&out).await?;
            let deadline = self.next_deadline();
            tokio::select! {
                // The handle (held in `options`) keeps the sender alive, so this only
                // returns on a control change.
                _ = self.control.changed() => {}
                read = self.stream.read(&mut buf) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    self.count(Counter::BytesReceived, n as u64);
                    if !self.is_silent(Instant::now()) {
                        let room = MAX_UNREAD.saturating_sub(self.unread.len());
                        self.unread.extend(&buf[..n.min(room)]);
                    }
                }
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
            }
        }
    }

    /// Take over run-time controls; true when this session was unplugged.
    fn apply_control(&mut self) -> bool {
        let handle = self.options.handle.clone();
        let mut control = handle.control();
        if control.unplugs > self.unplugs_at_start {
            return true;
        }
        let silent_until = control.silent_until.take();
        let registered = control.registered;
        let injected: Vec<String> = control.urcs.drain(..).collect();
        let incoming: Vec<(String, String)> = control.incoming.drain(..).collect();
        drop(control);
        if let Some(until) = silent_until {
            self.go_silent(until);
        }
        if let Some(registered) = registered {
            self.modem.registered = registered;
        }
        let now = Instant::now();
        for line in injected {
            let mut urc = Vec::new();
            push_line(&mut urc, &line);
            self.schedule_urc(now, urc);
        }
        for (sender, text) in incoming {
            let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            match crate::sms::encode_deliver(&sender, &text, &time, self.next_reference) {
                Ok(parts) => self.at_network.extend(parts),
                Err(e) => tracing::warn!("simulated modem: cannot encode an incoming SMS: {e}"),
            }
            self.next_reference = self.next_reference.wrapping_add(1);
        }
        self.deliver_from_network(now);
        false
    }

    /// Hand the parts the network holds to the modem: routed as `+CMT`, or stored in
    /// `SM` (announced by `+CMTI` when `<mt>` = 1); with `SM` full they wait, and the
    /// modem says `^SMMEMFULL`.
    fn deliver_from_network(&mut self, now: Instant) {
        while let Some(pdu) = self.at_network.front() {
            let mut urc = Vec::new();
            if self.modem.message_routing == 2 {
                let smsc = 1 + usize::from(pdu.first().copied().unwrap_or(0));
                let tpdu_len = pdu.len().saturating_sub(smsc);
                push_line(&mut urc, &format!("+CMT: ,{tpdu_len}"));
                urc.extend_from_slice(hex::encode_upper(pdu).as_bytes());
                urc.extend_from_slice(b"\r\n");
            } else {
                let entry = StoredPdu {
                    stat: 0,
                    pdu: pdu.clone(),
                };
                let Some(index) = self.modem.storage.store("SM", entry) else {
                    push_line(&mut urc, "^SMMEMFULL: \"SM\"");
                    self.schedule_urc(now, urc);
                    self.publish_storage();
                    return;
                };
                if self.modem.message_routing == 1 {
                    push_line(&mut urc, &format!("+CMTI: \"SM\",{index}"));
                }
            }
            self.at_network.pop_front();
            if !urc.is_empty() {
                self.schedule_urc(now, urc);
            }
        }
        self.publish_storage();
    }

    fn is_silent(&self, now: Instant) -> bool {
        self.silent_until.is_some_and(|until| now < until)
    }

    fn go_silent(&mut self, until: Instant) {
        self.silent_until = Some(self.silent_until.map_or(until, |t| t.max(until)));
        self.unread.clear();
        self.line.clear();
        self.mode = Mode::Command;
    }

    /// Unsolicited output waits while the host is typing a body after `> `.
    fn can_emit_urcs(&self, now: Instant) -> bool {
        !self.is_silent(now) && matches!(self.mode, Mode::Command)
    }

    fn fire_timers(&mut self, now: Instant, out: &mut Vec<u8>) {
        if self.silent_until.is_some_and(|until| until <= now) {
            self.silent_until = None;
        }
        if self.pending.as_ref().is_some_and(|p| p.due <= now) {
            if let Some(pending) = self.pending.take() {
                self.complete_send(pending, now, out);
            }
        }
        if !self.can_emit_urcs(now) {
            return;
        }
        let due = self.urcs.partition_point(|(at, _)| *at <= now);
        for (_, urc) in self.urcs.drain(..due) {
            out.extend_from_slice(&urc);
        }
        if self.storm.next.is_some_and(|next| next <= now) {
            if let Some(line) = self.next_storm_line() {
                push_line(out, &line);
            }
            let interval = self.options.urc_storm.as_ref().map(|s| s.interval);
            // Re-arm from now rather than from the missed tick, so that a long silence
            // does not produce a burst afterwards.
            self.storm.next = interval.map(|i| now + i);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut deadlines = vec![self.silent_until, self.pending.as_ref().map(|p| p.due)];
        if self.can_emit_urcs(now) {
            deadlines.push(self.urcs.first().map(|(at, _)| *at));
            deadlines.push(self.storm.next);
        }
        deadlines.into_iter().flatten().min()
    }

    fn next_storm_line(&mut self) -> Option<String> {
        let storm = self.options.urc_storm.as_ref()?;
        let line = storm
            .lines
            .get(self.storm.index % storm.lines.len().max(1))?;
        self.storm.index = self.storm.index.wrapping_add(1);
        Some(line.clone())
    }

    fn schedule_urc(&mut self, at: Instant, urc: Vec<u8>) {
        let pos = self.urcs.partition_point(|(t, _)| *t <= at);
        self.urcs.insert(pos, (at, urc));
    }

    /// Handle buffered bytes until they run out or the modem becomes busy.
    fn process_input(&mut self, out: &mut Vec<u8>) {
        while self.pending.is_none() && !self.is_silent(Instant::now()) {
            let Some(byte) = self.unread.pop_front() else {
                return;
            };
            match self.mode {
                Mode::Command => self.command_byte(byte, out),
                Mode::Prompt(_) => self.body_byte(byte, out),
            }
        }
    }

    fn command_byte(&mut self, byte: u8, out: &mut Vec<u8>) {
        match byte {
            b'\r' => {
                let line = mem::take(&mut self.line);
                self.command_line(&line, out);
            }
            BACKSPACE => {
                self.line.pop();
            }
            // `\n` after `\r`, ESC sent to clear a prompt that is not there, NUL noise.
            b if b < 0x20 => {}
            b => {
                if self.line.len() <= MAX_LINE {
                    self.line.push(b);
                }
            }
        }
    }

    fn command_line(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(raw);
        if self.modem.echo {
            out.extend_from_slice(raw);
            out.push(b'\r');
        }
        let command = if raw.len() > MAX_LINE {
            Some(commands::Command::Unknown)
        } else {
            commands::parse(&text)
        };
        let Some(command) = command else {
            return;
        };
        self.count(Counter::AtCommands, 1);
        self.options.handle.stats().record_command(text.trim());
        self.log.stats().record_command(text.trim());
        match &command {
            commands::Command::EnterPin(_) => self.count(Counter::PinAttempts, 1),
            commands::Command::Send(_) => self.count(Counter::CmgsCommands, 1),
            _ => {}
        }
        let now = Instant::now();
        let touches_storage = matches!(command, commands::Command::DeleteMessage(_));
        match self.modem.execute(command, now) {
            Action::Reply(reply) => {
                if touches_storage {
                    self.deliver_from_network(now);
                }
                self.reply(&reply, out)
            }
            Action::Prompt(input) => {
                out.extend_from_slice(b"\r\n> ");
                self.mode = Mode::Prompt(input);
            }
            Action::Ussd(line) => {
                self.reply(&Reply::ok(), out);
                let mut urc = Vec::new();
                push_line(&mut urc, &line);
                self.schedule_urc(now + USSD_DELAY, urc);
            }
            Action::Reboot => {
                self.reply(&Reply::ok(), out);
                self.modem.power_on();
                if !self.options.boot_delay.is_zero() {
                    self.go_silent(now + self.options.boot_delay);
                }
                self.booted(now);
            }
        }
    }

    fn body_byte(&mut self, byte: u8, out: &mut Vec<u8>) {
        let text_mode = matches!(self.mode, Mode::Prompt(Input::Text { .. }));
        match byte {
            CTRL_Z => {
                let body = mem::take(&mut self.line);
                if let Mode::Prompt(input) = mem::replace(&mut self.mode, Mode::Command) {
                    self.submitted(&input, &body);
                }
            }
            ESC => {
                self.line.clear();
                self.mode = Mode::Command;
                self.count(Counter::Escapes, 1);
                self.reply(&Reply::ok(), out);
            }
            // Text mode: Enter starts a new line of the message and a new prompt.
            b'\r' if text_mode => {
                self.push_body(b'\n');
                out.extend_from_slice(b"\r\n> ");
            }
            b'\r' | b'\n' => {}
            b => {
                if self.modem.echo {
                    out.push(b);
                }
                self.push_body(b);
            }
        }
    }

    fn push_body(&mut self, byte: u8) {
        // One byte past the limit is kept so that decoding fails instead of truncating.
        if self.line.len() <= MAX_BODY {
            self.line.push(byte);
        }
    }

    /// A body ended with Ctrl-Z: decide its fate now, answer when its radio time is up.
    fn submitted(&mut self, input: &Input, body: &[u8]) {
        let now = Instant::now();
        self.submissions += 1;
        self.count(Counter::Submissions, 1);
        let k = self.submissions;
        let outcome = if body.len() > MAX_BODY {
            Err(match input {
                Input::Pdu { .. } => super::submit::INVALID_PDU,
                Input::Text { .. } => super::submit::INVALID_TEXT,
            })
        } else {
            self.modem.submit(input, body, now)
        };
        // A malformed body is refused by the modem itself, before any radio time.
        let radio = outcome.is_ok() || self.options.cms_errors.contains_key(&k);
        let due = if radio {
            now + self.options.send_delay
        } else {
            now
        };
        let silence = self
            .options
            .silences
            .iter()
            .find(|s| s.at_send == k)
            .cloned();
        if let Some(silence) = silence {
            self.go_silent(now + silence.duration);
            if silence.delivered && outcome.is_ok() {
                self.pending = Some(Pending {
                    due,
                    outcome,
                    answer: false,
                });
            }
            return;
        }
        let outcome = match self.options.cms_errors.get(&k) {
            Some(&code) => Err(code),
            None => outcome,
        };
        self.pending = Some(Pending {
            due,
            outcome,
            answer: true,
        });
    }

    fn complete_send(&mut self, pending: Pending, now: Instant, out: &mut Vec<u8>) {
        let answer = pending.answer && !self.is_silent(now);
        let reply = match pending.outcome {
            Ok(part) => {
                let wants_report = part.status_report && self.options.delivery_reports;
                let number = part.number.clone();
                let (mr, sms) = self.modem.accept(part);
                self.count(Counter::PartsAccepted, 1);
                if let Some(sms) = sms {
                    self.count(Counter::SmsCompleted, 1);
                    if let Err(e) = self.log.record(sms) {
                        tracing::warn!("simulated modem: {e}");
                    }
                }
                if wants_report {
                    self.report(mr, &number, now);
                }
                Reply::line(format!("+CMGS: {mr}"))
            }
            Err(code) => Reply::with(Final::Cms(code)),
        };
        if answer {
            self.reply(&reply, out);
        }
    }

    /// The network's status report on part `mr`: routed as `+CDS` (`<ds>` = 1), or
    /// stored in `SR` and announced by `+CDSI` (`<ds>` = 2), or dropped.
    fn report(&mut self, mr: u8, number: &str, now: Instant) {
        let status = self.options.delivery_status;
        let at = now + self.options.delivery_report_delay;
        match self.modem.report_routing {
            1 => {
                if let Some(urc) = report::cds_urc(mr, number, status) {
                    self.schedule_urc(at, urc);
                }
            }
            2 => {
                let Some(pdu) = report::status_report_pdu(mr, number, status) else {
                    return;
                };
                let entry = StoredPdu { stat: 0, pdu };
                let Some(index) = self.modem.storage.store("SR", entry) else {
                    return;
                };
                self.publish_storage();
                if !self.options.cdsi_silent {
                    let mut urc = Vec::new();
                    push_line(&mut urc, &format!("+CDSI: \"SR\",{index}"));
                    self.schedule_urc(at, urc);
                }
            }
            _ => {}
        }
    }

    fn publish_storage(&self) {
        self.options
            .handle
            .publish_storage(self.modem.storage.counts());
    }

    fn reply(&mut self, reply: &Reply, out: &mut Vec<u8>) {
        let inside = self
            .options
            .urc_storm
            .as_ref()
            .is_some_and(|s| s.inside_replies);
        let urc = if inside && !reply.lines.is_empty() {
            self.next_storm_line()
        } else {
            None
        };
        if matches!(reply.result, Final::Cms(_)) {
            self.count(Counter::CmsErrors, 1);
        }
        out.extend_from_slice(&reply.render(self.modem.cmee, urc.as_deref()));
    }

    async fn write(&mut self, out: &[u8]) -> io::Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        self.stream.write_all(out).await?;
        self.stream.flush().await?;
        self.count(Counter::BytesSent, out.len() as u64);
        Ok(())
    }

    fn count(&self, counter: Counter, n: u64) {
        self.options.handle.stats().add(counter, n);
        self.log.stats().add(counter, n);
    }
}
