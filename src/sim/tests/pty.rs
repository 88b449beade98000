//! The simulator on a real pseudo-terminal: bytes must cross it unchanged (no cooked-mode
//! translation or echo), and the port must survive being pulled and plugged back.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_serial::SerialPortBuilderExt;

use super::HELLO_PDU;
use crate::sim::{run, SimOptions, SimPort, SmsLog};

const WAIT: Duration = Duration::from_secs(5);

/// Write `send`, then read exactly `want.len()` bytes and compare them byte for byte.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(port: &mut S, send: &[u8], want: &[u8]) {
    port.write_all(send).await.unwrap();
    let mut got = vec![0u8; want.len()];
    tokio::time::timeout(WAIT, port.read_exact(&mut got))
        .await
        .expect("timed out")
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(want),
        "raw bytes: {got:?}"
    );
}

#[tokio::test]
async fn cmgs_round_trip_over_a_pty_pair_is_byte_exact() {
    let (master, mut slave) = tokio_serial::SerialStream::pair().unwrap();
    let log = SmsLog::in_memory();
    tokio::spawn(run(master, SimOptions::default(), log.clone()));
    // Echo on: a cooked pty would double the echo or turn `\r` into `\n`.
    exchange(&mut slave, b"ATE0\r", b"ATE0\r\r\nOK\r\n").await;
    exchange(&mut slave, b"AT+CMGS=23\r", b"\r\n> ").await;
    let body = format!("{HELLO_PDU}\x1a");
    exchange(&mut slave, body.as_bytes(), b"\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    // Text mode, with bytes a cooked line discipline would eat or rewrite
    // (^D EOF, ^U kill, DEL erase are fine in a raw pty).
    exchange(&mut slave, b"AT+CMGF=1\r", b"\r\nOK\r\n").await;
    exchange(&mut slave, b"AT+CMGS=\"+4670\"\r", b"\r\n> ").await;
    exchange(
        &mut slave,
        b"a\x04b\x15c\x7f\x1a",
        b"\r\n+CMGS: 1\r\n\r\nOK\r\n",
    )
    .await;
    let got = log.wait_for(2, WAIT).await;
    assert_eq!(got[0].text, "hellohello");
    assert_eq!(got[1].text, "a\u{4}b\u{15}c\u{7f}");
}

#[tokio::test]
async fn port_comes_back_as_a_new_pty_behind_the_same_link() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("gsm-modem");
    let log = SmsLog::in_memory();
    let mut sim = SimPort::plug(link.clone(), SimOptions::default(), log.clone()).unwrap();
    assert_eq!(std::fs::read_link(&link).unwrap(), sim.tty().unwrap());

    let open = |path: &std::path::Path| {
        tokio_serial::new(path.to_string_lossy(), 115_200)
            .open_native_async()
            .unwrap()
    };
    let mut port = open(&link);
    exchange(&mut port, b"ATE0\r", b"ATE0\r\r\nOK\r\n").await;
    // The driver closing and reopening the device finds the same modem (echo still off).
    drop(port);
    let mut port = open(&link);
    exchange(&mut port, b"AT\r", b"\r\nOK\r\n").await;

    sim.unplug();
    assert!(std::fs::symlink_metadata(&link).is_err());
    let mut buf = [0u8; 16];
    // A vanished pty reads as EOF or EIO, never as data.
    let read = tokio::time::timeout(WAIT, port.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    drop(port);

    sim.replug().unwrap();
    let mut port = open(&link);
    // A fresh boot: echo is on again.
    exchange(&mut port, b"AT+CMGF=1\r", b"AT+CMGF=1\r\r\nOK\r\n").await;
    exchange(
        &mut port,
        b"AT+CMGS=\"+4670\"\r",
        b"AT+CMGS=\"+4670\"\r\r\n> ",
    )
    .await;
    exchange(&mut port, b"hi\x1a", b"hi\r\n+CMGS: 0\r\n\r\nOK\r\n").await;
    assert_eq!(log.wait_for(1, WAIT).await.len(), 1);
    drop(sim);
    assert!(std::fs::symlink_metadata(&link).is_err());
}
