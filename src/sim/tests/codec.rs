//! Round trips through the crate's own PDU codec: what `sms::encode_submit` produces
//! the simulator decodes back to the same text, and the `+CDS` reports it writes
//! `sms::decode_status_report` reads back.

use std::time::Duration;

use super::quiet_modem;
use crate::sim::{ReceivedSms, SimOptions};
use crate::sms::{self, DeliveryStatus, PhoneNumber, SubmitOptions};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn encoded_parts_are_reassembled_and_reported() {
    let (mut host, log, _task) = quiet_modem(SimOptions {
        delivery_reports: true,
        ..SimOptions::default()
    })
    .await;
    host.at("AT+CNMI=2,1,2,1,0", "\r\nOK\r\n").await;
    let to = PhoneNumber::parse("+46708251358").unwrap();
    // 7-bit with extension-table characters, long enough for three parts.
    let text = "Your code is 123456 {valid 10 min} ".repeat(10);
    let opts = SubmitOptions {
        status_report: true,
        ..SubmitOptions::default()
    };
    let pdus = sms::encode_submit(&to, &text, 0x1234, &opts).unwrap();
    assert_eq!(pdus.len(), 3);
    for (mr, pdu) in pdus.iter().enumerate() {
        host.at(&format!("AT+CMGS={}", pdu.tpdu_len), "\r\n> ")
            .await;
        host.send(format!("{}\x1a", pdu.to_hex()).as_bytes()).await;
        host.expect(format!("\r\n+CMGS: {mr}\r\n\r\nOK\r\n").as_bytes())
            .await;
        let urc = host.read_line().await;
        let len: usize = urc.strip_prefix("+CDS: ").unwrap().parse().unwrap();
        let hex = host.read_line().await;
        let bytes = hex::decode(&hex).unwrap();
        assert_eq!(len, bytes.len() - 1 - usize::from(bytes[0]));
        let report = sms::decode_status_report(&bytes).unwrap();
        assert_eq!(usize::from(report.message_reference), mr);
        assert_eq!(report.recipient, "+46708251358");
        assert_eq!(report.status, DeliveryStatus::Delivered);
    }
    let got = log.wait_for(1, WAIT).await;
    assert_eq!(
        got,
        [ReceivedSms {
            number: "+46708251358".into(),
            text,
            parts: 3,
            message_references: vec![0, 1, 2],
        }]
    );
}

#[tokio::test]
async fn encoded_ucs2_single_part() {
    let (mut host, log, _task) = quiet_modem(SimOptions::default()).await;
    let to = PhoneNumber::parse("+4915112345678").unwrap();
    let text = "Код: 482913 ✓";
    let pdus = sms::encode_submit(&to, text, 0, &SubmitOptions::default()).unwrap();
    assert_eq!(pdus.len(), 1);
    host.at(&format!("AT+CMGS={}", pdus[0].tpdu_len), "\r\n> ")
        .await;
    host.send(format!("{}\x1a", pdus[0].to_hex()).as_bytes())
        .await;
    host.expect(b"\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    let got = log.wait_for(1, WAIT).await;
    assert_eq!(
        (got[0].number.as_str(), got[0].text.as_str()),
        ("+4915112345678", text)
    );
}
