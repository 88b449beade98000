//! One test per behaviour switch of `SimOptions` and per `SimHandle` control. Sends use
//! text mode where the PDU codec is not the point.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{quiet_modem, start, Host};
use crate::sim::{Silence, SimHandle, SimOptions, SmsLog, UrcStorm};

const WAIT: Duration = Duration::from_secs(5);

/// Text-mode send of `text` to +4670; expects `reply` after Ctrl-Z.
async fn text_send(host: &mut Host, text: &str, reply: &str) {
    host.at("AT+CMGS=\"+4670\"", "\r\n> ").await;
    host.send(format!("{text}\x1a").as_bytes()).await;
    host.expect(reply.as_bytes()).await;
}

async fn text_modem(options: SimOptions) -> (Host, SmsLog) {
    let (mut host, log, _task) = quiet_modem(options).await;
    host.at("AT+CMGF=1", "\r\nOK\r\n").await;
    (host, log)
}

#[tokio::test]
async fn boot_delay_drops_what_arrives_before() {
    let (mut host, _log, _task) = start(SimOptions {
        echo: false,
        boot_delay: Duration::from_millis(300),
        ..SimOptions::default()
    });
    host.send(b"AT\r").await;
    host.expect_nothing(Duration::from_millis(150)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    host.at("AT", "\r\nOK\r\n").await;
}

#[tokio::test]
async fn boot_output_comes_when_booted_and_after_a_reset() {
    let (mut host, _log, _task) = start(SimOptions {
        echo: false,
        boot_delay: Duration::from_millis(100),
        boot_output: b"\0\0\r\nRDY\r\n".to_vec(),
        ..SimOptions::default()
    });
    host.expect(b"\0\0\r\nRDY\r\n").await;
    host.at("AT+CFUN=1,1", "\r\nOK\r\n\0\0\r\nRDY\r\n").await;
}

#[tokio::test]
async fn send_delay_holds_the_answer_and_queues_input() {
    let delay = Duration::from_millis(200);
    let (mut host, _log) = text_modem(SimOptions {
        send_delay: delay,
        ..SimOptions::default()
    })
    .await;
    host.at("AT+CMGS=\"+4670\"", "\r\n> ").await;
    let t0 = Instant::now();
    // The AT typed while the radio works is answered after the send.
    host.send(b"hi\x1aAT\r").await;
    host.expect(b"\r\n+CMGS: 0\r\n\r\nOK\r\n\r\nOK\r\n").await;
    assert!(t0.elapsed() >= delay, "{:?}", t0.elapsed());
}

#[tokio::test]
async fn scripted_cms_errors_hit_the_chosen_sends() {
    let (mut host, log) = text_modem(SimOptions {
        cms_errors: BTreeMap::from([(1, 500), (3, 38)]),
        ..SimOptions::default()
    })
    .await;
    text_send(&mut host, "a", "\r\n+CMS ERROR: 500\r\n").await;
    text_send(&mut host, "b", "\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    text_send(&mut host, "c", "\r\n+CMS ERROR: 38\r\n").await;
    text_send(&mut host, "d", "\r\n+CMGS: 1\r\n\r\nOK\r\n").await;
    let texts: Vec<_> = log.all().into_iter().map(|s| s.text).collect();
    assert_eq!(texts, ["b", "d"]);
}

#[tokio::test]
async fn silence_after_a_send_that_was_delivered() {
    let options = SimOptions {
        silences: vec![Silence {
            at_send: 2,
            duration: Duration::from_millis(300),
            delivered: true,
        }],
        ..SimOptions::default()
    };
    let (mut host, log) = text_modem(options).await;
    text_send(&mut host, "one", "\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    host.at("AT+CMGS=\"+4670\"", "\r\n> ").await;
    host.send(b"two\x1a").await;
    host.send(b"AT\r").await;
    host.expect_nothing(Duration::from_millis(150)).await;
    // The network got it although the host never heard back.
    assert_eq!(log.wait_for(2, WAIT).await[1].text, "two");
    tokio::time::sleep(Duration::from_millis(200)).await;
    host.at("AT", "\r\nOK\r\n").await;
    text_send(&mut host, "three", "\r\n+CMGS: 2\r\n\r\nOK\r\n").await;
}

#[tokio::test]
async fn silence_at_a_send_that_was_lost() {
    let options = SimOptions {
        silences: vec![Silence {
            at_send: 1,
            duration: Duration::from_millis(200),
            delivered: false,
        }],
        ..SimOptions::default()
    };
    let (mut host, log) = text_modem(options).await;
    host.at("AT+CMGS=\"+4670\"", "\r\n> ").await;
    host.send(b"lost\x1a").await;
    host.expect_nothing(Duration::from_millis(100)).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    text_send(&mut host, "kept", "\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    let texts: Vec<_> = log.all().into_iter().map(|s| s.text).collect();
    assert_eq!(texts, ["kept"]);
}

#[tokio::test]
async fn handle_silence_for() {
    let options = SimOptions::default();
    let handle = options.handle.clone();
    let (mut host, _log, _task) = quiet_modem(options).await;
    handle.silence_for(Duration::from_millis(200));
    host.send(b"AT\r").await;
    host.expect_nothing(Duration::from_millis(100)).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    host.at("AT", "\r\nOK\r\n").await;
}

#[tokio::test]
async fn urc_storm_between_and_inside_replies() {
    let (mut host, _log, _task) = quiet_modem(SimOptions {
        urc_storm: Some(UrcStorm::every(Duration::from_millis(100))),
        ..SimOptions::default()
    })
    .await;
    host.at("AT+CSQ", "\r\n+CSQ: 21,99\r\n\r\n^RSSI: 17\r\n\r\nOK\r\n")
        .await;
    // Replies without an information line are left alone.
    host.at("AT", "\r\nOK\r\n").await;
    host.expect(b"\r\n+CREG: 1\r\n").await;
    host.expect(b"\r\n^BOOT:20952548,0,0,0,72\r\n").await;
    host.at("AT+CMGF=1", "\r\nOK\r\n").await;
    text_send(
        &mut host,
        "x",
        "\r\n+CMGS: 0\r\n\r\n^RSSI: 17\r\n\r\nOK\r\n",
    )
    .await;
}

#[tokio::test]
async fn urc_storm_waits_while_the_host_types_a_body() {
    let (mut host, log) = text_modem(SimOptions {
        urc_storm: Some(UrcStorm {
            interval: Duration::from_millis(20),
            lines: vec!["RING".into()],
            inside_replies: false,
        }),
        ..SimOptions::default()
    })
    .await;
    host.send(b"AT+CMGS=\"+4670\"\r").await;
    // Whatever RINGs came first, the prompt ends the output until Ctrl-Z.
    host.skip_until(b"> ").await;
    host.expect_nothing(Duration::from_millis(100)).await;
    host.send(b"x\x1a").await;
    assert_eq!(log.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn delivery_report_follows_a_send_that_asked_for_it() {
    let (mut host, _log) = text_modem(SimOptions {
        delivery_reports: true,
        delivery_report_delay: Duration::from_millis(50),
        ..SimOptions::default()
    })
    .await;
    // No SRR in the first octet yet: no report.
    host.at("AT+CNMI=2,1,0,1,0", "\r\nOK\r\n").await;
    text_send(&mut host, "a", "\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    host.expect_nothing(Duration::from_millis(100)).await;
    host.at("AT+CSMP=49,167,0,0", "\r\nOK\r\n").await;
    text_send(&mut host, "b", "\r\n+CMGS: 1\r\n\r\nOK\r\n").await;
    // SMSC, fo 06, MR 01, recipient +4670 (4 digits, international).
    host.expect(b"\r\n+CDS: 21\r\n07916407000000F0060104916407")
        .await;
    let rest = host.read_exact(14 * 2 + 2 + 2).await;
    // Two 7-octet timestamps, then TP-ST 00, CRLF.
    assert!(
        rest.ends_with(b"00\r\n"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    // Without +CDS routing (<ds> = 0) the network report is not shown.
    host.at("AT+CNMI=2,1,0,0,0", "\r\nOK\r\n").await;
    text_send(&mut host, "c", "\r\n+CMGS: 2\r\n\r\nOK\r\n").await;
    host.expect_nothing(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn registration_off_then_on() {
    let options = SimOptions {
        registered: false,
        ..SimOptions::default()
    };
    let handle = options.handle.clone();
    let (mut host, log) = text_modem(options).await;
    host.at("AT+CREG?", "\r\n+CREG: 0,2\r\n\r\nOK\r\n").await;
    host.at("AT+COPS?", "\r\n+COPS: 0\r\n\r\nOK\r\n").await;
    text_send(&mut host, "a", "\r\n+CMS ERROR: 331\r\n").await;
    handle.set_registered(true);
    host.at("AT+CREG?", "\r\n+CREG: 0,1\r\n\r\nOK\r\n").await;
    text_send(&mut host, "b", "\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    assert_eq!(log.all().len(), 1);
}

#[tokio::test]
async fn lte_only_module_reports_through_cereg() {
    let (mut host, _log, _task) = quiet_modem(SimOptions {
        lte_only: true,
        ..SimOptions::default()
    })
    .await;
    host.at("AT+CREG?", "\r\n+CREG: 0,0\r\n\r\nOK\r\n").await;
    host.at("AT+CGREG?", "\r\n+CGREG: 0,0\r\n\r\nOK\r\n").await;
    host.at("AT+CEREG?", "\r\n+CEREG: 0,1\r\n\r\nOK\r\n").await;
    host.at("AT+CMGF=1", "\r\nOK\r\n").await;
    text_send(&mut host, "a", "\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
}

#[tokio::test]
async fn rejected_cnmi_variants() {
    let (mut host, _log, _task) = quiet_modem(SimOptions {
        cnmi_rejected: vec!["2,1,2,1,0".into()],
        ..SimOptions::default()
    })
    .await;
    host.at("AT+CNMI=2,1,2,1,0", "\r\n+CMS ERROR: 303\r\n")
        .await;
    host.at("AT+CNMI=2,1,2,2,0", "\r\nOK\r\n").await;
}

#[tokio::test]
async fn functionality_reset_reboots_into_a_locked_sim() {
    let (mut host, _log, _task) = start(SimOptions {
        echo: false,
        pin: Some("1234".into()),
        boot_delay: Duration::from_millis(200),
        ..SimOptions::default()
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    host.at("AT+CPIN=\"1234\"", "\r\nOK\r\n").await;
    host.at("ATE1", "\r\nOK\r\n").await;
    host.send(b"AT+CFUN=1,1\r").await;
    host.expect(b"AT+CFUN=1,1\r\r\nOK\r\n").await;
    host.send(b"AT\r").await;
    host.expect_nothing(Duration::from_millis(100)).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Echo back to the boot default (off here), PIN wanted again.
    host.at("AT+CPIN?", "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n")
        .await;
}

#[tokio::test]
async fn unplug_ends_the_session_and_injected_urcs_arrive() {
    let options = SimOptions::default();
    let handle = options.handle.clone();
    let (mut host, _log, task) = quiet_modem(options).await;
    handle.inject_urc("+CMTI: \"SM\",3");
    host.expect(b"\r\n+CMTI: \"SM\",3\r\n").await;
    handle.unplug();
    task.await.unwrap().unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::io::AsyncReadExt::read(&mut host.io, &mut buf)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // A session started later with the same handle is not affected.
    let (mut again, _log, _task) = quiet_modem(SimOptions {
        handle,
        ..SimOptions::default()
    })
    .await;
    again.at("AT", "\r\nOK\r\n").await;
}

#[tokio::test]
async fn stats_count_commands_and_bytes_per_modem_and_per_log() {
    let log = SmsLog::in_memory();
    let mut hosts = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..2 {
        let handle = SimHandle::new();
        let (host, modem) = tokio::io::duplex(4096);
        let options = SimOptions {
            echo: false,
            handle: handle.clone(),
            ..SimOptions::default()
        };
        tokio::spawn(crate::sim::run(modem, options, log.clone()));
        hosts.push(Host {
            io: host,
            pending: Vec::new(),
        });
        handles.push(handle);
    }
    for host in &mut hosts {
        host.at("AT+CMGF=1", "\r\nOK\r\n").await;
        text_send(host, "hi", "\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    }
    let one = handles[0].stats().snapshot();
    let sent_in = "AT+CMGF=1\r".len() + "AT+CMGS=\"+4670\"\r".len() + "hi\x1a".len();
    let sent_out = "\r\nOK\r\n".len() + "\r\n> ".len() + "\r\n+CMGS: 0\r\n\r\nOK\r\n".len();
    assert_eq!(one.at_commands, 2);
    assert_eq!(one.bytes_received, sent_in as u64);
    assert_eq!(one.bytes_sent, sent_out as u64);
    assert_eq!(
        (one.submissions, one.parts_accepted, one.sms_completed),
        (1, 1, 1)
    );
    let all = log.stats().snapshot();
    assert_eq!(all.at_commands, 4);
    assert_eq!(all.sms_completed, 2);
    assert_eq!(log.all().len(), 2);
}
