//! What the .deb installs besides the binary: the udev rule (syntax checked here, since
//! Debian's udevadm has no `verify` yet) and the systemd unit (checked with
//! `systemd-analyze` when it is installed).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const MATCH_KEYS: &[&str] = &[
    "ACTION",
    "DEVPATH",
    "KERNEL",
    "KERNELS",
    "NAME",
    "SUBSYSTEM",
    "SUBSYSTEMS",
    "DRIVER",
    "DRIVERS",
    "ATTR",
    "ATTRS",
    "ENV",
    "TAG",
    "TAGS",
    "TEST",
    "PROGRAM",
    "RESULT",
];
const ASSIGN_KEYS: &[&str] = &[
    "ENV", "TAG", "NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "ATTR", "RUN", "LABEL", "GOTO",
    "IMPORT", "OPTIONS",
];
const OPERATORS: &[&str] = &["==", "!=", "+=", "-=", ":=", "="];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One `KEY{attr}OP"value"` term of a rule line.
#[derive(Debug)]
struct Term {
    key: String,
    op: String,
    value: String,
}

fn parse_terms(line: &str) -> Result<Vec<Term>, String> {
    let mut terms = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| format!("no operator after {rest:?}"))?;
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        if let Some(attr) = rest.strip_prefix('{') {
            let close = attr.find('}').ok_or("unclosed {")?;
            rest = &attr[close + 1..];
        }
        let op = OPERATORS
            .iter()
            .find(|op| rest.starts_with(**op))
            .ok_or_else(|| format!("bad operator at {rest:?}"))?;
        rest = rest[op.len()..]
            .strip_prefix('"')
            .ok_or_else(|| format!("{key}: value not quoted"))?;
        let close = rest
            .find('"')
            .ok_or_else(|| format!("{key}: unclosed quote"))?;
        let value = rest[..close].to_owned();
        rest = rest[close + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if !rest.is_empty() {
            return Err(format!("missing comma before {rest:?}"));
        }
        terms.push(Term {
            key: key.to_owned(),
            op: (*op).to_owned(),
            value,
        });
    }
    Ok(terms)
}

#[test]
fn udev_rule_parses_and_covers_the_dongle_families() {
    let text = std::fs::read_to_string(root().join("udev/99-sms2fa.rules")).expect("read");
    let mut labels = BTreeSet::new();
    let mut gotos = BTreeSet::new();
    let mut vendors = BTreeSet::new();
    let mut assigned = BTreeSet::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let terms = parse_terms(line).unwrap_or_else(|e| panic!("line {}: {e}", number + 1));
        for term in terms {
            let is_match = term.op == "==" || term.op == "!=";
            let known = if is_match { MATCH_KEYS } else { ASSIGN_KEYS };
            assert!(
                known.contains(&term.key.as_str()),
                "line {}: {} cannot take {}",
                number + 1,
                term.key,
                term.op
            );
            match term.key.as_str() {
                "LABEL" => {
                    labels.insert(term.value.clone());
                }
                "GOTO" => {
                    gotos.insert(term.value.clone());
                }
                _ => {}
            }
            if is_match && term.value.len() == 4 && line.contains("ID_SMS2FA_VENDOR") {
                vendors.insert(term.value.clone());
            }
            if !is_match {
                assigned.insert(format!("{}{}{}", term.key, term.op, term.value));
            }
        }
    }
    assert_eq!(gotos.difference(&labels).count(), 0, "GOTO without LABEL");
    for vendor in ["12d1", "1e0e", "2c7c", "1199", "1546", "19d2"] {
        assert!(vendors.contains(vendor), "no rule for vendor {vendor}");
    }
    for needed in [
        "ENV=1",
        "TAG+=systemd",
        "GROUP=dialout",
        "SYMLINK+=gsm-modem",
    ] {
        assert!(assigned.contains(needed), "the rule never sets {needed}");
    }
    assert!(text.contains("ENV{ID_MM_DEVICE_IGNORE}=\"1\""));
}

#[test]
fn udev_parser_rejects_broken_lines() {
    assert!(parse_terms(r#"SUBSYSTEM=="tty" GROUP="dialout""#).is_err());
    assert!(parse_terms(r#"SUBSYSTEM=="tty", GROUP=dialout"#).is_err());
    assert!(parse_terms(r#"SUBSYSTEM=~"tty""#).is_err());
    assert!(parse_terms(r#"ATTRS{idVendor}=="12d1", SYMLINK+="x""#).is_ok());
}

/// `systemd-analyze verify` checks that ExecStart exists, so verify a copy that runs
/// the binary cargo just built.
#[test]
fn systemd_unit_verifies() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed; .ci/run installs it");
        return;
    };
    assert!(version.status.success());
    let unit = std::fs::read_to_string(root().join("systemd/sms2fa.service")).expect("read");
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=",
        "StateDirectory=sms2fa",
        "SupplementaryGroups=dialout",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("sms2fa.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/bin/sms2fa", env!("CARGO_BIN_EXE_sms2fa")),
    )
    .expect("write");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("sms2fa.service:"),
        "warnings about the unit: {stderr}"
    );

    let output = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&copy)
        .output()
        .expect("run systemd-analyze security");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "exposure above 2.0:\n{stdout}");
}
