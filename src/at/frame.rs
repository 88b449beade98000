//! Framing: a pure function from the buffered bytes and what the driver last sent to
//! the next frame and how many bytes it used.
//!
//! Every decision is taken only once the bytes that settle it are present, and never
//! changes when more bytes arrive: that is what makes the events independent of how
//! the serial port happens to chunk its reads. Undecided input waits, but never past
//! [`MAX_FRAME`] bytes.

use super::line::{final_result, is_hex};
use super::{urc, Event, FinalResult, Urc};

/// The most bytes one frame may span; a longer undecided run is emitted as garbage.
/// Twice the longest real line (a `+CMGR` PDU is at most ~360 hex characters, a
/// two-line `+CMT` ~400) leaves room for vendor verbosity.
pub const MAX_FRAME: usize = 4096;

/// What the framer must know of the conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context<'a> {
    /// The command in flight, as written without its `\r` (`AT+CMGS=23`).
    pub pending: Option<&'a str>,
    /// Whether its `> ` prompt was seen: the modem may now echo the hex PDU and Ctrl-Z.
    pub prompted: bool,
}

/// One framed piece of modem output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An event that stands on its own (echo, prompt, URC, garbage).
    Event(Event),
    /// An information line of the pending command; the reply is not complete yet.
    Info(String),
    /// The final result code that completes the pending command's reply.
    Final(FinalResult),
}

/// The next frame at the start of `buf`, and the bytes it used.
///
/// `(Some(frame), n)`: a frame spanning `n ≥ 1` bytes. `(None, n)` with `n ≥ 1`: `n`
/// bytes of line endings or blanks to drop. `(None, 0)`: more bytes are needed.
pub fn frame(buf: &[u8], ctx: &Context<'_>) -> (Option<Frame>, usize) {
    let window = buf.get(..MAX_FRAME).unwrap_or(buf);
    match decide(window, ctx) {
        Decision::Need if window.len() >= MAX_FRAME => (
            Some(Frame::Event(Event::Garbage(window.to_vec()))),
            window.len(),
        ),
        Decision::Need => (None, 0),
        Decision::Skip(n) => (None, n),
        Decision::Emit(frame, n) => (Some(frame), n),
    }
}

enum Decision {
    Need,
    Skip(usize),
    Emit(Frame, usize),
}

fn event(event: Event, used: usize) -> Decision {
    Decision::Emit(Frame::Event(event), used)
}

/// Line endings and the blanks modems put around lines and after the prompt.
fn is_blank(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b' ' | b'\t')
}

/// Bytes that cannot start a line: NULs and noise at boot, control characters,
/// anything outside ASCII.
fn is_junk(b: u8) -> bool {
    !is_blank(b) && !(0x21..0x7f).contains(&b)
}

/// A bare `\r` ends a line as well as `\r\n`: nothing a modem sends has a `\r` inside a
/// line, and waiting for a `\n` that some firmware never sends would stall. After the
/// prompt, the echoed Ctrl-Z (or ESC) ends the echoed PDU.
fn is_terminator(b: u8, ctx: &Context<'_>) -> bool {
    matches!(b, b'\r' | b'\n') || (ctx.prompted && matches!(b, 0x1a | 0x1b))
}

/// The first `n` bytes; callers pass a position found in `bytes`, so it always fits.
fn prefix(bytes: &[u8], n: usize) -> &[u8] {
    bytes.get(..n).unwrap_or(bytes)
}

fn decide(window: &[u8], ctx: &Context<'_>) -> Decision {
    let Some(&first) = window.first() else {
        return Decision::Need;
    };
    if is_blank(first) {
        return Decision::Skip(window.iter().take_while(|b| is_blank(**b)).count());
    }
    if first == b'>' {
        // The prompt has no line ending; it must be reported as soon as it shows.
        return if ctx.pending.is_some() {
            event(Event::Prompt, 1)
        } else {
            event(Event::Garbage(vec![first]), 1)
        };
    }
    if is_junk(first) {
        // The run ends at the first byte that is not junk; until one arrives the run
        // may still grow, and reporting it in pieces would depend on read sizes.
        return match window.iter().position(|b| !is_junk(*b)) {
            Some(n) => event(Event::Garbage(prefix(window, n).to_vec()), n),
            None => Decision::Need,
        };
    }
    let Some(end) = window.iter().position(|b| is_terminator(*b, ctx)) else {
        return Decision::Need;
    };
    let raw = prefix(window, end);
    let used = end + 1;
    match std::str::from_utf8(raw) {
        Ok(text) if !text.chars().any(|c| c.is_control() && c != '\t') => {
            classify(text.trim_end(), window, used, ctx)
        }
        _ => event(Event::Garbage(raw.to_vec()), used),
    }
}

/// `line` is complete, non-empty, printable; `used` bytes of `window` hold it.
fn classify(line: &str, window: &[u8], used: usize, ctx: &Context<'_>) -> Decision {
    let Some(command) = ctx.pending else {
        // Nothing asked, so whatever the modem says is unsolicited, even a stray `OK`
        // that answers a command the driver gave up on.
        return unsolicited(line, window, used, ctx);
    };
    if line.eq_ignore_ascii_case(command) || (ctx.prompted && is_hex(line)) {
        return event(Event::Echo(line.to_owned()), used);
    }
    if let Some(result) = final_result(line) {
        return Decision::Emit(Frame::Final(result), used);
    }
    if urc::is_known(line) && !urc::answers(line, command) {
        return unsolicited(line, window, used, ctx);
    }
    Decision::Emit(Frame::Info(line.to_owned()), used)
}

/// A URC, with the PDU line of `+CMT:` / `+CDS: <len>` / `+CBM:` when one follows.
fn unsolicited(line: &str, window: &[u8], used: usize, ctx: &Context<'_>) -> Decision {
    let alone = |used| {
        event(
            Event::Urc(Urc {
                line: line.to_owned(),
                pdu: None,
            }),
            used,
        )
    };
    if !urc::takes_pdu(line) {
        return alone(used);
    }
    let rest = window.get(used..).unwrap_or_default();
    let gap = rest.iter().take_while(|b| is_blank(**b)).count();
    let Some(&next) = rest.get(gap) else {
        return Decision::Need;
    };
    // A PDU is hex; anything else (a final result, a prompt, noise) is not this URC's
    // second line, so the header goes out alone rather than swallowing it.
    if !next.is_ascii_hexdigit() {
        return alone(used);
    }
    let candidate = rest.get(gap..).unwrap_or_default();
    let Some(end) = candidate.iter().position(|b| is_terminator(*b, ctx)) else {
        return Decision::Need;
    };
    match std::str::from_utf8(prefix(candidate, end)).map(str::trim_end) {
        Ok(pdu) if is_hex(pdu) => event(
            Event::Urc(Urc {
                line: line.to_owned(),
                pdu: Some(pdu.to_owned()),
            }),
            used + gap + end + 1,
        ),
        _ => alone(used),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Context<'static> = Context {
        pending: None,
        prompted: false,
    };

    fn urc(line: &str, pdu: Option<&str>) -> Option<Frame> {
        Some(Frame::Event(Event::Urc(Urc {
            line: line.into(),
            pdu: pdu.map(Into::into),
        })))
    }

    #[test]
    fn waits_for_a_line_end() {
        assert_eq!(frame(b"", &IDLE), (None, 0));
        assert_eq!(frame(b"RD", &IDLE), (None, 0));
        assert_eq!(frame(b"RDY\r", &IDLE), (urc("RDY", None), 4));
        assert_eq!(frame(b"RDY\n", &IDLE), (urc("RDY", None), 4));
        assert_eq!(frame(b"\r\r\n\r\nRDY", &IDLE), (None, 5));
    }

    #[test]
    fn prompt_only_while_a_command_is_pending() {
        let ctx = Context {
            pending: Some("AT+CMGS=23"),
            prompted: false,
        };
        assert_eq!(frame(b"> ", &ctx), (Some(Frame::Event(Event::Prompt)), 1));
        assert_eq!(
            frame(b"> ", &IDLE),
            (Some(Frame::Event(Event::Garbage(b">".to_vec()))), 1)
        );
    }

    #[test]
    fn pdu_echo_after_the_prompt() {
        let ctx = Context {
            pending: Some("AT+CMGS=9"),
            prompted: true,
        };
        assert_eq!(
            frame(b"0011000B\x1a\r\n", &ctx),
            (Some(Frame::Event(Event::Echo("0011000B".into()))), 9)
        );
        assert_eq!(
            frame(b"+CMGS: 4\r\n", &ctx),
            (Some(Frame::Info("+CMGS: 4".into())), 9)
        );
    }

    #[test]
    fn junk_runs_end_at_the_first_real_byte() {
        assert_eq!(frame(b"\0\0\0", &IDLE), (None, 0));
        assert_eq!(
            frame(b"\0\0\xffRDY\r\n", &IDLE),
            (Some(Frame::Event(Event::Garbage(b"\0\0\xff".to_vec()))), 3)
        );
        assert_eq!(
            frame(b"OK\0K\r\n", &IDLE),
            (Some(Frame::Event(Event::Garbage(b"OK\0K".to_vec()))), 5)
        );
        assert_eq!(
            frame(b"O\xc3(\r", &IDLE),
            (Some(Frame::Event(Event::Garbage(b"O\xc3(".to_vec()))), 4)
        );
    }

    #[test]
    fn long_undecided_input_is_bounded() {
        let noise = vec![b'x'; MAX_FRAME + 10];
        let (frame, used) = frame(&noise, &IDLE);
        assert_eq!(used, MAX_FRAME);
        assert_eq!(
            frame,
            Some(Frame::Event(Event::Garbage(vec![b'x'; MAX_FRAME])))
        );
    }

    #[test]
    fn two_line_urcs_wait_for_their_pdu() {
        assert_eq!(frame(b"+CDS: 6\r\n", &IDLE), (None, 0));
        assert_eq!(frame(b"+CDS: 6\r\n0006", &IDLE), (None, 0));
        assert_eq!(
            frame(b"+CDS: 6\r\n0006AB\r\n", &IDLE),
            (urc("+CDS: 6", Some("0006AB")), 16)
        );
        assert_eq!(
            frame(b"+CDS: 6\r\nOK\r\n", &IDLE),
            (urc("+CDS: 6", None), 8)
        );
        assert_eq!(
            frame(b"+CDS: 6\r\n00 6\r\n", &IDLE),
            (urc("+CDS: 6", None), 8)
        );
    }
}
