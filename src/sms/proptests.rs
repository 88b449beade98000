//! Property tests of the whole layer: packing, splitting, encoding and decoding back,
//! and decoders that never panic on arbitrary bytes.

use std::time::Duration;

use proptest::prelude::*;

use super::split::{split, SplitText};
use super::*;

fn gsm_char() -> impl Strategy<Value = char> {
    proptest::sample::select(gsm7::all_chars())
}

fn gsm_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(gsm_char(), 0..max).prop_map(|v| v.into_iter().collect())
}

/// Texts that hit the part boundaries: long runs of one- and two-unit characters,
/// mixed with anything.
fn any_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        gsm_text(40),
        any::<String>(),
        "[a-z€{}]{0,200}",
        "[жЖ🔐😀a]{0,200}",
        "\\PC{0,50}",
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

fn to() -> PhoneNumber {
    PhoneNumber::parse("+46708251358").unwrap()
}

/// Octets of TP-UD, checked against TP-UDL (which counts septets for 7-bit).
fn user_data_octets(pdu: &SubmitPdu, coding: Coding, has_vp: bool) -> usize {
    let smsc_len = 1 + usize::from(pdu.bytes[0]);
    // First octet, TP-MR, then TP-DA: length in semi-octets, type, value.
    let da_len = 2 + usize::from(pdu.bytes[smsc_len + 2]).div_ceil(2);
    // TP-PID, TP-DCS and the optional TP-VP come before TP-UDL.
    let udl_at = smsc_len + 2 + da_len + 2 + usize::from(has_vp);
    let udl = usize::from(pdu.bytes[udl_at]);
    let octets = pdu.bytes.len() - udl_at - 1;
    let expected = match coding {
        Coding::Gsm7 => (udl * 7).div_ceil(8),
        Coding::Ucs2 => udl,
    };
    assert_eq!(octets, expected);
    octets
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn gsm_text_round_trips_through_pack_and_unpack(text in gsm_text(300), fill in 0u8..7) {
        let septets = gsm7::to_septets(&text).unwrap();
        prop_assert_eq!(Some(septets.len()), gsm7::septet_len(&text));
        let packed = gsm7::pack(&septets, fill);
        prop_assert_eq!(packed.len(), (usize::from(fill) + 7 * septets.len()).div_ceil(8));
        let back = gsm7::unpack(&packed, fill, septets.len()).unwrap();
        prop_assert_eq!(&back, &septets);
        prop_assert_eq!(gsm7::from_septets(&back), text);
    }

    #[test]
    fn every_text_round_trips_through_split_encode_decode(
        text in any_text(),
        reference in any::<u16>(),
        concat_ref16 in any::<bool>(),
        validity in proptest::option::of(0u64..(70 * 7 * 24 * 3600)),
    ) {
        let opts = SubmitOptions {
            validity: validity.map(Duration::from_secs),
            concat_ref16,
            max_parts: 255,
            ..SubmitOptions::default()
        };
        let plan = plan_with(&text, concat_ref16);
        let pdus = match encode_submit(&to(), &text, reference, &opts) {
            Ok(pdus) => pdus,
            Err(EncodeError::Empty) => {
                prop_assert!(text.is_empty());
                prop_assert_eq!(plan.parts, 0);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        prop_assert_eq!(pdus.len(), plan.parts);
        if !concat_ref16 {
            prop_assert_eq!(plan, super::plan(&text));
        }
        let total = pdus.len();
        let mut joined = String::new();
        for (i, pdu) in pdus.iter().enumerate() {
            prop_assert!(user_data_octets(pdu, plan.coding, validity.is_some()) <= 140);
            prop_assert_eq!(pdu.tpdu_len, pdu.bytes.len() - 1);
            let d = decode_submit(&pdu.bytes).unwrap();
            prop_assert_eq!(d.coding, plan.coding);
            prop_assert_eq!(d.destination.as_str(), "+46708251358");
            prop_assert_eq!(d.validity, validity.map(|s| relative_vp(Duration::from_secs(s))));
            match d.concat {
                None => prop_assert_eq!(total, 1),
                Some(c) => {
                    let expected_ref = if concat_ref16 { reference } else { reference & 0xFF };
                    prop_assert_eq!(c.reference, expected_ref);
                    prop_assert_eq!(usize::from(c.total), total);
                    prop_assert_eq!(usize::from(c.sequence), i + 1);
                }
            }
            joined.push_str(&d.text);
        }
        prop_assert_eq!(joined, text);
    }

    #[test]
    fn pairs_never_straddle_parts(text in any_text(), concat_ref16 in any::<bool>()) {
        match split(&text, concat_ref16) {
            SplitText::Gsm7(parts) => {
                for part in parts {
                    // Walk the part char by char: it must not end inside an ESC pair.
                    let mut i = 0;
                    while i < part.len() {
                        i += if part[i] == gsm7::ESC { 2 } else { 1 };
                    }
                    prop_assert_eq!(i, part.len());
                    prop_assert!(part.len() <= GSM7_SINGLE);
                }
            }
            SplitText::Ucs2(parts) => {
                for part in parts {
                    prop_assert!(!part.last().is_some_and(|u| (0xD800..0xDC00).contains(u)));
                    prop_assert!(!part.first().is_some_and(|u| (0xDC00..0xE000).contains(u)));
                    prop_assert!(part.len() <= UCS2_SINGLE);
                }
            }
        }
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_submit(&bytes);
        let _ = decode_status_report(&bytes);
        let _ = decode_deliver(&bytes);
    }

    #[test]
    fn delivers_round_trip_and_reassemble_in_any_order(
        text in any_text(),
        sender in prop_oneof!["\\+[1-9][0-9]{6,14}", "[A-Za-z]{1,11}", "[0-9]{3,6}"],
        reference in any::<u16>(),
        order in any::<prop::sample::Index>(),
    ) {
        prop_assume!(!text.is_empty());
        let Ok(pdus) = encode_deliver(&sender, &text, "2026-12-05T10:00:00+01:00", reference) else {
            return Ok(());
        };
        let mut parts: Vec<Deliver> = pdus.iter().map(|p| decode_deliver(p).unwrap()).collect();
        prop_assert!(parts.iter().all(|p| p.sender == sender));
        // Any rotation of the arrival order gives the text back once, at the last part.
        let shift = order.index(parts.len());
        parts.rotate_left(shift);
        let mut reassembly = Reassembly::default();
        let count = parts.len();
        let mut whole = None;
        for (i, part) in parts.into_iter().enumerate() {
            let done = reassembly.add(i, part, chrono::Utc::now());
            prop_assert_eq!(done.is_some(), i + 1 == count);
            whole = whole.or(done);
        }
        let whole = whole.unwrap();
        prop_assert_eq!(whole.text, text);
        prop_assert_eq!(whole.parts, count);
        prop_assert_eq!(reassembly.waiting(), 0);
    }

    #[test]
    fn decoders_never_panic_on_damaged_pdus(
        text in any_text(),
        damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let opts = SubmitOptions { max_parts: 255, ..SubmitOptions::default() };
        let Ok(pdus) = encode_submit(&to(), &text, 1, &opts) else { return Ok(()) };
        let mut bytes = pdus[0].bytes.clone();
        for (at, value) in damage {
            let i = at.index(bytes.len());
            bytes[i] ^= value;
        }
        let _ = decode_submit(&bytes);
        let _ = decode_submit(&bytes[..cut.index(bytes.len())]);
        let _ = decode_deliver(&bytes);
        if let Ok(delivers) = encode_deliver("+447700900123", &text, "2026-12-05T10:00:00Z", 1) {
            let mut deliver = delivers[0].clone();
            let i = cut.index(deliver.len());
            deliver[i] ^= bytes[0] | 1;
            let _ = decode_deliver(&deliver);
            let _ = decode_deliver(&deliver[..i]);
        }
        let report = hex::decode("0006D60B911326880736F4111011719551401110117195714000").unwrap();
        let mut report = report;
        let i = cut.index(report.len());
        report[i] ^= bytes[0] | 1;
        let _ = decode_status_report(&report);
        let _ = decode_status_report(&report[..i]);
    }

    #[test]
    fn status_reports_round_trip(
        message_reference in any::<u8>(),
        recipient in prop_oneof!["\\+[1-9][0-9]{6,14}", "[0-9]{1,20}", "[A-Za-z][A-Za-z0-9 ]{0,10}"],
        secs in 946_684_800i64..4_102_444_799,
        quarters in -79i32..=79,
        st in any::<u8>(),
        smsc in proptest::option::of("\\+[1-9][0-9]{6,14}"),
    ) {
        let offset = chrono::FixedOffset::east_opt(quarters * 900).unwrap();
        let stamp = chrono::DateTime::from_timestamp(secs, 0).unwrap().with_timezone(&offset);
        prop_assume!((2000..=2099).contains(&chrono::Datelike::year(&stamp)));
        let report = StatusReport {
            message_reference,
            recipient,
            service_centre_time: stamp.to_rfc3339(),
            discharge_time: stamp.to_rfc3339(),
            status: DeliveryStatus::from_tp_st(st),
        };
        let pdu = encode_status_report(&report, smsc.as_deref()).unwrap();
        prop_assert_eq!(decode_status_report(&pdu).unwrap(), report);
    }

    #[test]
    fn validity_is_the_smallest_cover(secs in 0u64..(70 * 7 * 24 * 3600)) {
        let d = Duration::from_secs(secs);
        let vp = relative_vp(d);
        prop_assert!(vp == 255 || relative_validity(vp) >= d);
        prop_assert!(vp == 0 || relative_validity(vp - 1) < d);
    }
}
