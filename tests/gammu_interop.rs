//! Interop with an independent SMS implementation: the PDUs `sms::encode_submit` makes
//! are decoded by Gammu (Debian's `python3-gammu`, via `tests/interop/gammu_decode.py`)
//! to exactly the number, text, coding and part numbering we meant; and SMS-DELIVER
//! PDUs (real captures, and what the simulator sends) read the same by both decoders.
//!
//! Needs `apt-get install python3-gammu`; without it this test fails, it does not skip.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use sms2fa::sms::{self, Coding, PhoneNumber, SubmitOptions};

/// Debian's interpreter: a pyenv `python3` earlier on PATH cannot see dist-packages.
const PYTHON: &str = "/usr/bin/python3";
const TO: &str = "+46708251358";

struct Case {
    name: &'static str,
    text: String,
    coding: Coding,
    parts: usize,
    opts: SubmitOptions,
}

fn case(name: &'static str, text: impl Into<String>, coding: Coding, parts: usize) -> Case {
    Case {
        name,
        text: text.into(),
        coding,
        parts,
        opts: SubmitOptions {
            max_parts: 8,
            ..SubmitOptions::default()
        },
    }
}

fn ref16(mut c: Case) -> Case {
    c.opts.concat_ref16 = true;
    c
}

fn cases() -> Vec<Case> {
    use Coding::{Gsm7, Ucs2};
    let gsm_alphabet = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                        ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    let mut with_options = case("options: SMSC, validity, report", "Code 123456", Gsm7, 1);
    with_options.opts.smsc = Some(PhoneNumber::parse("+46700000000").unwrap());
    with_options.opts.validity = Some(Duration::from_secs(600));
    with_options.opts.status_report = true;
    vec![
        case("ascii", "Your code is 123456", Gsm7, 1),
        case(
            "every extension character",
            "Ext: ^ { } \\ [ ~ ] | € \u{0C} 123456",
            Gsm7,
            1,
        ),
        case("form feed alone", "\u{0C}", Gsm7, 1),
        case("whole default alphabet", gsm_alphabet, Gsm7, 1),
        case(
            "mail and money",
            "user_name@example.com paid $5, ¥3, £2",
            Gsm7,
            1,
        ),
        case(
            "Nordic in GSM",
            "Kod: 123456 Åsa Øre Ærø ß É ä ö ñ ü à",
            Gsm7,
            1,
        ),
        case("Greek capitals in GSM", "ΔΦΓΛΩΠΨΣΘΞ 123456", Gsm7, 1),
        case("newlines", "Hello\nWorld\r\nCode: 123456", Gsm7, 1),
        case("shop euro", "[Shop] € refund 123456", Gsm7, 1),
        case("Cyrillic", "Ваш код: 123456", Ucs2, 1),
        case("Portuguese", "Código: 123456 — não partilhe", Ucs2, 1),
        case("lock emoji", "123456 is your 🔐 code", Ucs2, 1),
        case("Greek", "Ο κωδικός σας είναι 123456", Ucs2, 1),
        case("Arabic", "رمز التحقق الخاص بك هو 123456", Ucs2, 1),
        case("Chinese", "您的验证码是 123456", Ucs2, 1),
        case("Japanese", "認証コード: 123456", Ucs2, 1),
        case("Hindi", "आपका कोड 123456 है", Ucs2, 1),
        case("emoji sequences", "😀👍🏽🎉 👨‍👩‍👧 123456", Ucs2, 1),
        case("CJK extension B", "𠀀𠀁 123456", Ucs2, 1),
        case(
            "German with en dash",
            "Ihr Code: 123456 – gültig 10 Minuten",
            Ucs2,
            1,
        ),
        case("160 GSM", "a".repeat(160), Gsm7, 1),
        case("161 GSM", "a".repeat(161), Gsm7, 2),
        case("306 GSM", "b".repeat(306), Gsm7, 2),
        case("307 GSM", "c".repeat(307), Gsm7, 3),
        case("612 GSM", "d".repeat(612), Gsm7, 4),
        case("80 euro signs", "€".repeat(80), Gsm7, 1),
        case("81 euro signs", "€".repeat(81), Gsm7, 2),
        case(
            "ESC pair on the boundary",
            format!("{}€{}", "a".repeat(152), "b".repeat(20)),
            Gsm7,
            2,
        ),
        case(
            "extension-heavy template",
            "{code} [x] ~|^ ".repeat(20),
            Gsm7,
            3,
        ),
        case("70 UCS-2", "Ж".repeat(70), Ucs2, 1),
        case("71 UCS-2", "Ж".repeat(71), Ucs2, 2),
        case("134 UCS-2", "ж".repeat(134), Ucs2, 2),
        case("135 UCS-2", "я".repeat(135), Ucs2, 3),
        case("268 UCS-2", "д".repeat(268), Ucs2, 4),
        case(
            "surrogate pair on the boundary",
            format!("{}🔐{}", "ж".repeat(66), "ж".repeat(20)),
            Ucs2,
            2,
        ),
        case("35 emoji", "🔐".repeat(35), Ucs2, 1),
        case("36 emoji", "😀".repeat(36), Ucs2, 2),
        case(
            "long Portuguese",
            "Código: 123456 — não partilhe. ".repeat(8),
            Ucs2,
            4,
        ),
        ref16(case("16-bit ref, 161 GSM", "e".repeat(161), Gsm7, 2)),
        ref16(case("16-bit ref, 305 GSM", "f".repeat(305), Gsm7, 3)),
        ref16(case("16-bit ref, 133 UCS-2", "ю".repeat(133), Ucs2, 3)),
        ref16(case(
            "16-bit ref, ESC pair on the boundary",
            format!("{}{{{}", "g".repeat(151), "h".repeat(10)),
            Gsm7,
            2,
        )),
        with_options,
    ]
}

fn reference_of(index: usize, c: &Case) -> u16 {
    let index = u16::try_from(index).unwrap();
    if c.opts.concat_ref16 {
        0xA000 + index
    } else {
        0x40 + index
    }
}

/// Run one of the interop scripts with `request` on its stdin; its JSON answer.
fn run_script(name: &str, request: &Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name);
    let mut child = Command::new(PYTHON)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {PYTHON} ({e}): apt-get install python3 python3-gammu")
        });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(request.to_string().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed ({}); if python3-gammu is missing: \
         apt-get install python3-gammu\n{stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn gammu_decode(request: &Value) -> Value {
    run_script("gammu_decode.py", request)
}

#[test]
fn gammu_decodes_our_pdus_to_the_input() {
    let to = PhoneNumber::parse(TO).unwrap();
    let cases = cases();
    assert!(cases.len() >= 30);
    let mut request = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let pdus = sms::encode_submit(&to, &c.text, reference_of(i, c), &c.opts)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(pdus.len(), c.parts, "{}: our part count", c.name);
        assert_eq!(sms::plan_with(&c.text, c.opts.concat_ref16).parts, c.parts);
        let hexes: Vec<String> = pdus.iter().map(|p| p.to_hex()).collect();
        request.push(json!({ "name": c.name, "pdus": hexes }));
    }
    let response = gammu_decode(&json!({ "cases": request }));
    let results = response["results"].as_array().unwrap();
    assert_eq!(results.len(), cases.len());
    for (i, (c, got)) in cases.iter().zip(results).enumerate() {
        check_case(i, c, got);
    }
}

fn check_case(index: usize, c: &Case, got: &Value) {
    let name = c.name;
    assert_eq!(got["error"], Value::Null, "{name}: gammu error");
    let coding = match c.coding {
        Coding::Gsm7 => "Default_No_Compression",
        Coding::Ucs2 => "Unicode_No_Compression",
    };
    let parts = got["parts"].as_array().unwrap();
    assert_eq!(parts.len(), c.parts, "{name}");
    let mut joined = String::new();
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(part["type"], "Submit", "{name}");
        assert_eq!(part["number"], TO, "{name}");
        assert_eq!(part["coding"], coding, "{name}: coding");
        assert_eq!(part["message_reference"], 0, "{name}");
        if c.parts == 1 {
            assert_eq!(part["udh_type"], "NoUDH", "{name}");
        } else {
            let reference = i64::from(reference_of(index, c));
            if c.opts.concat_ref16 {
                assert_eq!(part["udh_type"], "ConcatenatedMessages16bit", "{name}");
                assert_eq!(part["id16"], reference, "{name}");
            } else {
                assert_eq!(part["udh_type"], "ConcatenatedMessages", "{name}");
                assert_eq!(part["id8"], reference, "{name}");
            }
            assert_eq!(part["part_number"], i + 1, "{name}: part number");
            assert_eq!(part["all_parts"], c.parts, "{name}: part count");
        }
        joined.push_str(part["text"].as_str().unwrap());
    }
    // Every part on its own decodes to whole characters: nothing straddles a boundary.
    assert_eq!(joined, c.text, "{name}: parts decoded one by one");
    let in_order: Vec<usize> = (0..c.parts).collect();
    assert_eq!(got["groups"], json!([in_order]), "{name}: gammu's linking");
    assert_eq!(
        got["text"].as_str(),
        Some(c.text.as_str()),
        "{name}: linked text"
    );
    if let Some(smsc) = &c.opts.smsc {
        assert_eq!(parts[0]["smsc"], smsc.as_str(), "{name}: SMSC");
    }
    if c.opts.validity.is_some() {
        assert_eq!(parts[0]["validity"], "10M", "{name}: TP-VP");
    }
}

// SMS-DELIVER, the other way round: received SMS.

fn gammu_decode_delivers(pdus: &[String]) -> Vec<Value> {
    let response = run_script("gammu_decode_deliver.py", &json!({ "pdus": pdus }));
    response["results"].as_array().unwrap().clone()
}

/// Real SMS-DELIVER captures (gammu's test dumps): our decoder reads the sender and
/// text that gammu reads.
#[test]
fn our_deliver_decoder_agrees_with_gammu_on_real_captures() {
    let captures = include_str!("interop/deliver_captures.txt");
    let captures: Vec<(&str, &str)> = captures
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once(' '))
        .collect();
    assert!(captures.len() >= 15, "{}", captures.len());
    let pdus: Vec<String> = captures.iter().map(|(_, pdu)| pdu.to_string()).collect();
    let theirs = gammu_decode_delivers(&pdus);
    let mut compared_text = 0;
    for ((source, pdu), gammu) in captures.iter().zip(&theirs) {
        assert_eq!(gammu["error"], Value::Null, "{source}");
        let ours = sms::decode_deliver(&hex::decode(pdu).unwrap())
            .unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(gammu["number"], ours.sender.as_str(), "{source}: sender");
        if let Some(text) = gammu["text"].as_str() {
            assert_eq!(ours.text, text, "{source}: text");
            compared_text += 1;
        }
        if gammu["udh_type"] == "ConcatenatedMessages" {
            let concat = ours.concat.expect("concatenation");
            assert_eq!(gammu["part_number"], concat.sequence, "{source}");
            assert_eq!(gammu["all_parts"], concat.total, "{source}");
        }
    }
    assert!(compared_text >= 12, "{compared_text}");
}

/// What the simulated network sends (`sms::encode_deliver`) is what gammu reads.
#[test]
fn gammu_decodes_our_delivers_to_the_input() {
    let cases = [
        ("+447700900123", "Your balance is low"),
        ("+447700900123", "Curly {braces} [and] ~tilde~ €uro"),
        ("Vodafone", "Top up now"),
        ("12345", "Привет, мир 👋"),
        ("+447700900123", &"Long text that needs parts. ".repeat(8)),
        ("+447700900123", &"Длинный текст ".repeat(12)),
    ];
    for (i, (sender, text)) in cases.iter().enumerate() {
        let reference = u16::try_from(i).unwrap() + 1;
        let pdus =
            sms::encode_deliver(sender, text, "2026-12-05T10:00:00+01:00", reference).unwrap();
        let hexes: Vec<String> = pdus.iter().map(hex::encode_upper).collect();
        let theirs = gammu_decode_delivers(&hexes);
        let mut joined = String::new();
        for (n, part) in theirs.iter().enumerate() {
            assert_eq!(part["error"], Value::Null, "{text}");
            assert_eq!(part["type"], "Deliver", "{text}");
            assert_eq!(part["number"], *sender, "{text}");
            if pdus.len() > 1 {
                assert_eq!(part["part_number"], n + 1, "{text}");
                assert_eq!(part["all_parts"], pdus.len(), "{text}");
            }
            joined.push_str(part["text"].as_str().unwrap());
        }
        assert_eq!(joined, *text);
    }
}
