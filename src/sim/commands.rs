//! Parsing one command line (without its `\r`) into what the simulated modem understands.
//! Command names are case-insensitive like on real modems; quoted arguments keep their case.

/// Which registration query a `+CREG`-style command is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegKind {
    /// `+CREG`: circuit-switched (GSM) registration.
    Cs,
    /// `+CGREG`: GPRS.
    Gprs,
    /// `+CEREG`: EPS (LTE).
    Eps,
}

impl RegKind {
    pub fn prefix(self) -> &'static str {
        match self {
            RegKind::Cs => "+CREG",
            RegKind::Gprs => "+CGREG",
            RegKind::Eps => "+CEREG",
        }
    }
}

/// The TE character set (`AT+CSCS`), which governs text-mode bodies and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Gsm,
    Ira,
    Ucs2,
}

impl Charset {
    pub fn name(self) -> &'static str {
        match self {
            Charset::Gsm => "GSM",
            Charset::Ira => "IRA",
            Charset::Ucs2 => "UCS2",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `AT` alone.
    Attention,
    /// `ATZ`: back to the stored profile.
    Reset,
    /// `ATI`.
    Identify,
    /// `ATE0` / `ATE1`.
    Echo(bool),
    SetCmee(u8),
    QueryCmee,
    QueryPin,
    EnterPin(String),
    SetFormat(u8),
    QueryFormat,
    SetCharset(Charset),
    QueryCharset,
    /// `AT+CSMP=<fo>,...`: only the first octet matters here (TP-SRR in text mode).
    SetTextParams(u8),
    SetService(u8),
    QueryService,
    /// `AT+CNMI=...`, with its parameters as written (for rejecting chosen variants) and
    /// the `<ds>` value (how status reports are routed).
    SetIndications {
        params: String,
        ds: u8,
    },
    QueryIndications,
    TestIndications,
    /// `AT+CNMA`: acknowledge a routed `+CDS`.
    Acknowledge,
    SignalQuality,
    QueryRegistration(RegKind),
    SetRegistration(RegKind, u8),
    QueryOperator,
    /// `AT+CSCA?`: the service centre the SIM holds.
    QueryServiceCentre,
    /// `AT+CSCA="<number>"[,<toa>]`: accepted, not kept (the simulated network needs none).
    SetServiceCentre,
    /// `AT+CIMI`: the SIM's IMSI.
    Imsi,
    /// `AT+CPMS?`: the memories in use and how full they are.
    QueryStorage,
    /// `AT+CPMS=?`: the memories offered.
    TestStorage,
    /// `AT+CPMS="<mem1>"[,...]`: the memory read, listed and deleted from.
    SelectStorage(String),
    /// `AT+CMGR=<index>`.
    ReadMessage(u32),
    /// `AT+CMGD=<index>[,<flag>]`.
    DeleteMessage(u32),
    /// `AT+CMGL=<stat>` (PDU mode: 0 to 4, 4 all).
    ListMessages(u8),
    Manufacturer,
    Model,
    Revision,
    Serial,
    QueryFunctionality,
    SetFunctionality {
        fun: u8,
        reset: bool,
    },
    /// `AT+CUSD=1,"<code>"[,<dcs>]`: a USSD request (the code as given, plain or
    /// packed hex).
    Ussd(String),
    /// `AT+CMGS=<length>` in PDU mode, or `AT+CMGS="<number>"` in text mode.
    Send(SendTarget),
    /// Anything else, including well-known commands with malformed arguments (and
    /// Huawei's `AT^CURC`, which a non-Huawei modem rejects).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendTarget {
    Length(usize),
    Number(String),
    /// An argument fitting neither form.
    Invalid,
}

/// Parse one command line. Returns `None` for an empty line (which modems ignore).
pub fn parse(line: &str) -> Option<Command> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let Some(rest) = strip_prefix_ci(line, "AT") else {
        return Some(Command::Unknown);
    };
    Some(parse_after_at(rest))
}

fn parse_after_at(rest: &str) -> Command {
    if rest.is_empty() {
        return Command::Attention;
    }
    let upper = rest.to_ascii_uppercase();
    match upper.as_str() {
        "Z" | "Z0" => return Command::Reset,
        "I" | "I0" => return Command::Identify,
        "E0" | "E" => return Command::Echo(false),
        "E1" => return Command::Echo(true),
        _ => {}
    }
    // Extended commands: name, then `?` (read), `=?` (test) or `=args` (set), or nothing.
    let name_len = upper
        .char_indices()
        .find(|&(i, c)| i > 0 && !(c.is_ascii_alphanumeric()))
        .map_or(upper.len(), |(i, _)| i);
    let (name, tail) = upper.split_at(name_len);
    let raw_args = &rest[name_len..];
    let op = match tail {
        "" => Op::Exec,
        "?" => Op::Read,
        "=?" => Op::Test,
        _ => match raw_args.strip_prefix('=') {
            Some(args) => Op::Set(args),
            None => return Command::Unknown,
        },
    };
    extended(name, op).unwrap_or(Command::Unknown)
}

enum Op<'a> {
    Exec,
    Read,
    Test,
    Set(&'a str),
}

fn extended(name: &str, op: Op<'_>) -> Option<Command> {
    use Command as C;
    let reg = |kind| match op {
        Op::Read => Some(C::QueryRegistration(kind)),
        Op::Set(a) => number_in(a, 0..=3).map(|n| C::SetRegistration(kind, n)),
        _ => None,
    };
    match (name, &op) {
        ("+CMEE", Op::Set(a)) => number_in(a, 0..=2).map(C::SetCmee),
        ("+CMEE", Op::Read) => Some(C::QueryCmee),
        ("+CPIN", Op::Read) => Some(C::QueryPin),
        ("+CPIN", Op::Set(a)) => {
            let args = split_args(a);
            let pin = unquote(args.first()?)?;
            Some(C::EnterPin(pin.to_owned()))
        }
        ("+CMGF", Op::Set(a)) => number_in(a, 0..=1).map(C::SetFormat),
        ("+CMGF", Op::Read) => Some(C::QueryFormat),
        ("+CSCS", Op::Set(a)) => {
            let cs = unquote(a.trim())?.to_ascii_uppercase();
            match cs.as_str() {
                "GSM" => Some(C::SetCharset(Charset::Gsm)),
                "IRA" => Some(C::SetCharset(Charset::Ira)),
                "UCS2" => Some(C::SetCharset(Charset::Ucs2)),
                _ => None,
            }
        }
        ("+CSCS", Op::Read) => Some(C::QueryCharset),
        ("+CSMP", Op::Set(a)) => {
            let args = split_args(a);
            let fo = args.first().and_then(|f| f.trim().parse::<u8>().ok())?;
            Some(C::SetTextParams(fo))
        }
        ("+CSMS", Op::Set(a)) => number_in(a, 0..=1).map(C::SetService),
        ("+CSMS", Op::Read) => Some(C::QueryService),
        ("+CNMI", Op::Set(a)) => {
            let args = split_args(a);
            if args.len() > 5 {
                return None;
            }
            let mut values = Vec::with_capacity(args.len());
            for arg in &args {
                let arg = arg.trim();
                values.push(if arg.is_empty() {
                    0
                } else {
                    arg.parse::<u8>().ok()?
                });
            }
            let ds = values.get(3).copied().unwrap_or(0);
            Some(C::SetIndications {
                params: values
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                ds,
            })
        }
        ("+CNMI", Op::Read) => Some(C::QueryIndications),
        ("+CNMI", Op::Test) => Some(C::TestIndications),
        ("+CNMA", Op::Exec) => Some(C::Acknowledge),
        ("+CSQ", Op::Exec) => Some(C::SignalQuality),
        ("+CREG", _) => reg(RegKind::Cs),
        ("+CGREG", _) => reg(RegKind::Gprs),
        ("+CEREG", _) => reg(RegKind::Eps),
        ("+COPS", Op::Read) => Some(C::QueryOperator),
        ("+CGMI" | "+GMI", Op::Exec) => Some(C::Manufacturer),
        ("+CGMM" | "+GMM", Op::Exec) => Some(C::Model),
        ("+CGMR" | "+GMR", Op::Exec) => Some(C::Revision),
        ("+CGSN" | "+GSN", Op::Exec) => Some(C::Serial),
        ("+CSCA", Op::Read) => Some(C::QueryServiceCentre),
        ("+CSCA", Op::Set(_)) => Some(C::SetServiceCentre),
        ("+CIMI", Op::Exec) => Some(C::Imsi),
        ("+CPMS", Op::Read) => Some(C::QueryStorage),
        ("+CPMS", Op::Test) => Some(C::TestStorage),
        ("+CPMS", Op::Set(a)) => {
            let args = split_args(a);
            let mem = unquote(args.first()?)?.to_ascii_uppercase();
            Some(C::SelectStorage(mem))
        }
        ("+CMGR", Op::Set(a)) => a.trim().parse::<u32>().ok().map(C::ReadMessage),
        ("+CMGD", Op::Set(a)) => {
            let args = split_args(a);
            args.first()?
                .trim()
                .parse::<u32>()
                .ok()
                .map(C::DeleteMessage)
        }
        ("+CMGL", Op::Set(a)) => number_in(a, 0..=4).map(C::ListMessages),
        ("+CMGL", Op::Exec) => Some(C::ListMessages(0)),
        ("+CFUN", Op::Read) => Some(C::QueryFunctionality),
        ("+CFUN", Op::Set(a)) => {
            let args = split_args(a);
            let fun = args.first()?.trim().parse::<u8>().ok()?;
            let reset = match args.get(1).map(|r| r.trim()) {
                None | Some("0") => false,
                Some("1") => true,
                Some(_) => return None,
            };
            matches!(fun, 0 | 1 | 4).then_some(C::SetFunctionality { fun, reset })
        }
        ("+CMGS", Op::Set(a)) => Some(C::Send(send_target(a))),
        ("+CUSD", Op::Set(a)) => {
            let args = split_args(a);
            let code = unquote(args.get(1)?)?;
            Some(C::Ussd(code.to_owned()))
        }
        _ => None,
    }
}

fn send_target(args: &str) -> SendTarget {
    let args = split_args(args);
    let Some(first) = args.first().map(|a| a.trim()) else {
        return SendTarget::Invalid;
    };
    if let Some(number) = unquote(first) {
        return SendTarget::Number(number.to_owned());
    }
    match first.parse::<usize>() {
        Ok(n) if args.len() == 1 => SendTarget::Length(n),
        _ => SendTarget::Invalid,
    }
}

fn number_in(arg: &str, range: std::ops::RangeInclusive<u8>) -> Option<u8> {
    arg.trim().parse::<u8>().ok().filter(|n| range.contains(n))
}

/// Split on commas outside double quotes.
fn split_args(args: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in args.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&args[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&args[start..]);
    out
}

fn unquote(arg: &str) -> Option<&str> {
    arg.trim().strip_prefix('"')?.strip_suffix('"')
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_command_set() {
        let p = |s| parse(s).unwrap();
        assert_eq!(parse(""), None);
        assert_eq!(parse("  "), None);
        assert_eq!(p("AT"), Command::Attention);
        assert_eq!(p("at"), Command::Attention);
        assert_eq!(p("ATZ"), Command::Reset);
        assert_eq!(p("ATE0"), Command::Echo(false));
        assert_eq!(p("ate1"), Command::Echo(true));
        assert_eq!(p("AT+CMEE=2"), Command::SetCmee(2));
        assert_eq!(p("AT+CMEE=3"), Command::Unknown);
        assert_eq!(p("AT+CPIN?"), Command::QueryPin);
        assert_eq!(p("AT+CPIN=\"1234\""), Command::EnterPin("1234".into()));
        assert_eq!(p("AT+CPIN=1234"), Command::Unknown);
        assert_eq!(p("AT+CSCS=\"ucs2\""), Command::SetCharset(Charset::Ucs2));
        assert_eq!(p("AT+CSMP=49,167,0,0"), Command::SetTextParams(49));
        assert_eq!(
            p("AT+CNMI=2,1,2,1,0"),
            Command::SetIndications {
                params: "2,1,2,1,0".into(),
                ds: 1
            }
        );
        assert_eq!(
            p("AT+CNMI=2,1"),
            Command::SetIndications {
                params: "2,1".into(),
                ds: 0
            }
        );
        assert_eq!(p("AT+CREG?"), Command::QueryRegistration(RegKind::Cs));
        assert_eq!(p("AT+CEREG=2"), Command::SetRegistration(RegKind::Eps, 2));
        assert_eq!(
            p("AT+CFUN=1,1"),
            Command::SetFunctionality {
                fun: 1,
                reset: true
            }
        );
        assert_eq!(p("AT+CMGS=23"), Command::Send(SendTarget::Length(23)));
        assert_eq!(
            p("AT+CMGS=\"+4670\",145"),
            Command::Send(SendTarget::Number("+4670".into()))
        );
        assert_eq!(p("AT+CMGS=x"), Command::Send(SendTarget::Invalid));
        assert_eq!(p("AT^CURC=0"), Command::Unknown);
        assert_eq!(p("HELLO"), Command::Unknown);
        assert_eq!(p("AT+CSQ"), Command::SignalQuality);
        assert_eq!(p("AT+CGSN"), Command::Serial);
        assert_eq!(p("AT+CSCA?"), Command::QueryServiceCentre);
        assert_eq!(p("AT+CSCA=\"+15550009999\",145"), Command::SetServiceCentre);
        assert_eq!(p("AT+CIMI"), Command::Imsi);
        assert_eq!(p("AT+CPMS?"), Command::QueryStorage);
        assert_eq!(p("AT+CPMS=?"), Command::TestStorage);
        assert_eq!(p("AT+CPMS=\"sr\""), Command::SelectStorage("SR".into()));
        assert_eq!(
            p("AT+CPMS=\"SM\",\"SM\",\"SM\""),
            Command::SelectStorage("SM".into())
        );
        assert_eq!(p("AT+CMGR=3"), Command::ReadMessage(3));
        assert_eq!(p("AT+CMGD=3,0"), Command::DeleteMessage(3));
        assert_eq!(p("AT+CMGL=4"), Command::ListMessages(4));
        assert_eq!(p("AT+CMGL=5"), Command::Unknown);
        assert_eq!(p("AT+CUSD=1,\"*100#\",15"), Command::Ussd("*100#".into()));
    }
}
