//! Published SMS-SUBMIT vectors, byte by byte, and the decoder on them.

use std::time::Duration;

use super::*;
use crate::sms::ConcatInfo;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn number(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

fn hexes(pdus: &[SubmitPdu]) -> Vec<String> {
    pdus.iter().map(SubmitPdu::to_hex).collect()
}

#[test]
fn classic_hellohello_submit() {
    // The SMS-SUBMIT example of dreamfabric's "SMS and the PDU format" (and countless
    // AT tutorials): TP-VP 0xAA = 4 days, TP-MR 0, SMSC 00.
    let opts = SubmitOptions {
        validity: Some(4 * DAY),
        ..SubmitOptions::default()
    };
    let pdus = encode_submit(&number("+46708251358"), "hellohello", 0, &opts).unwrap();
    assert_eq!(
        hexes(&pdus),
        ["0011000B916407281553F80000AA0AE8329BFD4697D9EC37"]
    );
    assert_eq!(pdus[0].tpdu_len, 23);
    // Same message asking for a status report: TP-SRR sets bit 5 of the first octet.
    let opts = SubmitOptions {
        status_report: true,
        ..opts
    };
    let pdus = encode_submit(&number("+46708251358"), "hellohello", 0, &opts).unwrap();
    assert_eq!(
        hexes(&pdus),
        ["0031000B916407281553F80000AA0AE8329BFD4697D9EC37"]
    );
}

#[test]
fn python_gsmmodem_submit_vectors() {
    // test_pdu.py test_encodeSmsSubmit, first vector: no validity, no SMSC.
    let pdus = encode_submit(
        &number("+27820001111"),
        "Hello World!",
        0,
        &SubmitOptions::default(),
    )
    .unwrap();
    assert_eq!(
        hexes(&pdus),
        ["0001000B917228001011F100000CC8329BFD065DDF72363904"]
    );
    // Second vector: UCS-2, 52 weeks (0xF4), SMSC +44000000000.
    let opts = SubmitOptions {
        validity: Some(52 * 7 * DAY),
        smsc: Some(number("+44000000000")),
        ..SubmitOptions::default()
    };
    let pdus = encode_submit(&number("+123456789"), "世界您好！", 0, &opts).unwrap();
    assert_eq!(
        hexes(&pdus),
        ["07914400000000F01100099121436587F90008F40A4E16754C60A8597DFF01"]
    );
    assert_eq!(pdus[0].tpdu_len, pdus[0].bytes.len() - 8);
}

#[test]
fn python_gsmmodem_concatenated_vector() {
    // test_pdu.py test_encodeSmsSubmit_concatenated, reference 0. The original sets
    // TP-RD (first octet 0x45); we never reject duplicates, so ours is 0x41.
    let text = "Lorem ipsum dolor sit amet, consectetur adipisicing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.Ut enim ad minim veniam, quinostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.Duis aute irure dolor in reprehenderit in voluptate velit esse cillum doloe eu fugiat nulla pariatur.Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum";
    let expected = [
        "0041000B915121551532F40000A0050003000301986F79B90D4AC3E7F53688FC66BFE5A0799A0E0AB7CB741668FC76CFCB637A995E9783C2E4343C3D4F8FD3EE33A8CC4ED359A079990C22BF41E5747DDE7E9341F4721BFE9683D2EE719A9C26D7DD74509D0E6287C56F791954A683C86FF65B5E06B5C36777181466A7E3F5B0AB4A0795DDE936284C06B5D3EE741B642FBBD3E1360B14AFA7DD",
        "0041000B915121551532F40000A0050003000302DE73BABC4E0695F165F9384D0FD3D36F37A8CE6687DBE337881D16BFE5E939C89D9EA741753A28CC4EC7EB6938A88C0795C3A0F1BBDD7E93DFA0F1DB3D2FC7EB61BA8B584FCF41E13ABD0C4ACBEBF23288FC66BFE5A0B41B242FC3E56574D94D2ECBD37450DA0DB2BFD975383D4C2F83EC65769A0E2ACFE765D038CD66D7DB20F29BFD2E83CA",
        "0041000B915121551532F400008C050003000303EA2073FD9C0ED341EE3A9B1D06C1C3F274985E97BB8AF871194E2FD7E5A079DA4D07BDC7E370791CA683C675789A1CA687E920F7DB0D82CBDF6972D94D6781E675371D947683C675363C0C8AD7D3A0B7D99C1EA7C32072795E96D7DD7450FBCD66A7E9A0B03BDD06A5C9A0F29C0E6287C56F79BD0D",
    ];
    let pdus = encode_submit(&number("+15125551234"), text, 0, &SubmitOptions::default()).unwrap();
    assert_eq!(hexes(&pdus), expected);
    assert_eq!(crate::sms::plan(text).parts, 3);
    let decoded: Vec<DecodedSubmit> = pdus
        .iter()
        .map(|p| decode_submit(&p.bytes).unwrap())
        .collect();
    let joined: String = decoded.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(joined, text);
    assert_eq!(
        decoded[2].concat,
        Some(ConcatInfo {
            reference: 0,
            total: 3,
            sequence: 3
        })
    );
}

#[test]
fn sixteen_bit_reference_header() {
    let opts = SubmitOptions {
        concat_ref16: true,
        ..SubmitOptions::default()
    };
    let text = "x".repeat(161);
    let pdus = encode_submit(&number("+46708251358"), &text, 0xBEEF, &opts).unwrap();
    assert_eq!(pdus.len(), 2);
    // First octet 0x41, then MR, DA (2 + 6 octets), PID, DCS, UDL = 8 + 152 septets.
    let tpdu = &pdus[0].bytes[1..];
    assert_eq!(tpdu[0], 0x41);
    assert_eq!(tpdu[12], 160);
    assert_eq!(hex::encode_upper(&tpdu[13..20]), "060804BEEF0201");
    let d = decode_submit(&pdus[1].bytes).unwrap();
    assert_eq!(d.text, "x".repeat(9));
    assert_eq!(
        d.concat.map(|c| (c.reference, c.sequence)),
        Some((0xBEEF, 2))
    );
    // With the 8-bit element only the low octet of the reference is sent.
    let pdus = encode_submit(
        &number("+46708251358"),
        &text,
        0xBEEF,
        &SubmitOptions::default(),
    )
    .unwrap();
    assert_eq!(
        decode_submit(&pdus[0].bytes)
            .unwrap()
            .concat
            .map(|c| c.reference),
        Some(0xEF)
    );
}

#[test]
fn ucs2_parts_with_header() {
    let text = "Ж".repeat(71);
    let pdus = encode_submit(&number("+46708251358"), &text, 7, &SubmitOptions::default()).unwrap();
    assert_eq!(pdus.len(), 2);
    // UDL = 6 header octets + 67 × 2.
    assert_eq!(pdus[0].bytes[13], 140);
    assert_eq!(pdus[0].tpdu_len, 13 + 140);
    let texts: Vec<String> = pdus
        .iter()
        .map(|p| decode_submit(&p.bytes).unwrap().text)
        .collect();
    assert_eq!(texts.concat(), text);
}

#[test]
fn empty_and_too_long_texts_are_refused() {
    let to = number("+46708251358");
    let opts = SubmitOptions::default();
    assert_eq!(encode_submit(&to, "", 0, &opts), Err(EncodeError::Empty));
    assert_eq!(
        encode_submit(&to, &"a".repeat(613), 0, &opts),
        Err(EncodeError::TooLong {
            parts_needed: 5,
            max_parts: 4
        })
    );
    let huge = SubmitOptions {
        max_parts: 1000,
        ..opts
    };
    assert!(matches!(
        encode_submit(&to, &"a".repeat(153 * 256), 0, &huge),
        Err(EncodeError::TooLong {
            parts_needed: 256,
            ..
        })
    ));
}

#[test]
fn decodes_python_gsmmodem_submits() {
    // test_pdu.py test_decode: SMS-SUBMIT with SMSC, TP-SRR, MR 0x0D, 3 days.
    let pdu =
        hex::decode("07911326040000F0310D0B911326880736F40000A90FF7FBDD454E87CDE1B0DB357EB701")
            .unwrap();
    assert_eq!(
        decode_submit(&pdu).unwrap(),
        DecodedSubmit {
            smsc: Some("+31624000000".into()),
            destination: "+31628870634".into(),
            text: "www.diafaan.com".into(),
            coding: Coding::Gsm7,
            concat: None,
            message_reference: 0x0D,
            status_report_requested: true,
            validity: Some(0xA9),
        }
    );
    let pdu = hex::decode("07914346466554F601000B914316565811F9000806304253F68449").unwrap();
    let d = decode_submit(&pdu).unwrap();
    assert_eq!((d.text.as_str(), d.coding), ("あ叶葉", Coding::Ucs2));
    assert_eq!(d.destination, "+34616585119");
    // Absolute validity period (seven octets) is skipped over.
    let pdu = hex::decode(
        "0019000B917228001011F100003170013193008017D474BB3CA787DB70903DCC4E93D3F43C885E9ED301",
    )
    .unwrap();
    let d = decode_submit(&pdu).unwrap();
    assert_eq!(
        (d.text.as_str(), d.validity),
        ("Timestamp validity test", None)
    );
}

#[test]
fn decoder_refuses_what_it_cannot_read() {
    // python-gsmmodem's "UDL too long" UCS-2 PDU (UDL 0xA0 > 140 octets).
    let pdu = hex::decode("0041010C910661345542F60008A0050003000301306F3044").unwrap();
    assert!(matches!(decode_submit(&pdu), Err(DecodeError::Invalid(_))));
    // 8-bit data coding.
    let pdu =
        hex::decode("0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421").unwrap();
    assert!(matches!(decode_submit(&pdu), Err(DecodeError::Invalid(_))));
    // An SMS-DELIVER is not a submit.
    let pdu =
        hex::decode("06917228195339040B917228214365F700003130805120618005D4F29C2E03").unwrap();
    assert_eq!(decode_submit(&pdu), Err(DecodeError::WrongType(0x04)));
    assert_eq!(decode_submit(&[]), Err(DecodeError::Truncated));
    assert_eq!(
        decode_submit(&hex::decode("0011000B916407281553F80000AA0AE832").unwrap()),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn dcs_groups() {
    assert_eq!(coding_of_dcs(0x00), Ok(Coding::Gsm7));
    assert_eq!(coding_of_dcs(0x08), Ok(Coding::Ucs2));
    assert_eq!(coding_of_dcs(0x10), Ok(Coding::Gsm7)); // class 0 flash
    assert_eq!(coding_of_dcs(0x48), Ok(Coding::Ucs2)); // auto-deletion group
    assert_eq!(coding_of_dcs(0xF0), Ok(Coding::Gsm7));
    assert_eq!(coding_of_dcs(0xE0), Ok(Coding::Ucs2));
    assert!(coding_of_dcs(0x04).is_err());
    assert!(coding_of_dcs(0x20).is_err());
    assert!(coding_of_dcs(0x0C).is_err());
    assert!(coding_of_dcs(0x80).is_err());
    assert!(coding_of_dcs(0xF4).is_err());
}
