//! Replies as the modem writes them: verbose result codes, `\r\n` framing, and the
//! `+CMEE` setting deciding how errors look.

/// The final result code ending a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Final {
    Ok,
    Error,
    Cme(u16),
    Cms(u16),
    /// No final result code at all: the information lines end the reply (Wavecom's
    /// answer to `AT+CPIN?`).
    Omitted,
}

/// A complete answer: information lines, then the final result code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub lines: Vec<String>,
    pub result: Final,
}

impl Reply {
    pub fn ok() -> Self {
        Self::with(Final::Ok)
    }

    pub fn with(result: Final) -> Self {
        Self {
            lines: Vec::new(),
            result,
        }
    }

    pub fn line(line: impl Into<String>) -> Self {
        Self {
            lines: vec![line.into()],
            result: Final::Ok,
        }
    }

    /// The bytes on the wire. `cmee` is the `AT+CMEE` mode; `urc`, when given, is written
    /// between the first information line and the final result code, as modems do when an
    /// unsolicited code arrives while they answer.
    pub fn render(&self, cmee: u8, urc: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            push_line(&mut out, line);
            if i == 0 {
                if let Some(urc) = urc {
                    push_line(&mut out, urc);
                }
            }
        }
        if let Some(text) = final_text(self.result, cmee) {
            push_line(&mut out, &text);
        }
        out
    }
}

/// `\r\n<line>\r\n`, the framing of every line a verbose modem writes.
pub fn push_line(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn final_text(result: Final, cmee: u8) -> Option<String> {
    Some(match result {
        Final::Omitted => return None,
        Final::Ok => "OK".into(),
        Final::Error => "ERROR".into(),
        Final::Cme(_) if cmee == 0 => "ERROR".into(),
        Final::Cme(n) => match (cmee, cme_text(n)) {
            (2, Some(text)) => format!("+CME ERROR: {text}"),
            _ => format!("+CME ERROR: {n}"),
        },
        // 27.005 reports +CMS ERROR whatever +CMEE says; only the verbose form follows it.
        Final::Cms(n) => match (cmee, cms_text(n)) {
            (2, Some(text)) => format!("+CMS ERROR: {text}"),
            _ => format!("+CMS ERROR: {n}"),
        },
    })
}

/// 3GPP TS 27.007 §9.2 texts for the codes the simulator uses.
fn cme_text(code: u16) -> Option<&'static str> {
    Some(match code {
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        16 => "incorrect password",
        30 => "no network service",
        100 => "unknown",
        _ => return None,
    })
}

/// 3GPP TS 27.005 §3.2.5 (and 24.011 cause) texts for common codes.
fn cms_text(code: u16) -> Option<&'static str> {
    Some(match code {
        1 => "Unassigned (unallocated) number",
        8 => "Operator determined barring",
        10 => "Call barred",
        21 => "Short message transfer rejected",
        38 => "Network out of order",
        41 => "Temporary failure",
        42 => "Congestion",
        47 => "Resources unavailable, unspecified",
        96 => "Invalid mandatory information",
        304 => "Invalid PDU mode parameter",
        305 => "Invalid text mode parameter",
        310 => "SIM not inserted",
        311 => "SIM PIN required",
        314 => "SIM busy",
        316 => "SIM PUK required",
        330 => "SMSC address unknown",
        331 => "No network service",
        332 => "Network timeout",
        500 => "Unknown error",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_and_error_forms() {
        assert_eq!(Reply::ok().render(0, None), b"\r\nOK\r\n");
        assert_eq!(
            Reply::line("+CSQ: 21,99").render(0, Some("^RSSI: 17")),
            b"\r\n+CSQ: 21,99\r\n\r\n^RSSI: 17\r\n\r\nOK\r\n"
        );
        let cme = Reply::with(Final::Cme(16));
        assert_eq!(cme.render(0, None), b"\r\nERROR\r\n");
        assert_eq!(cme.render(1, None), b"\r\n+CME ERROR: 16\r\n");
        assert_eq!(
            cme.render(2, None),
            b"\r\n+CME ERROR: incorrect password\r\n"
        );
        let cms = Reply::with(Final::Cms(500));
        assert_eq!(cms.render(0, None), b"\r\n+CMS ERROR: 500\r\n");
        assert_eq!(cms.render(2, None), b"\r\n+CMS ERROR: Unknown error\r\n");
        assert_eq!(
            Reply::with(Final::Cms(999)).render(2, None),
            b"\r\n+CMS ERROR: 999\r\n"
        );
    }
}
