//! A modem behind a terminal server or ser2net in raw mode (`device =
//! "tcp://host:port"`): here the simulator's pty, bridged to TCP as ser2net would. The
//! daemon sends through it, and when the TCP connection drops it reconnects and goes on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::helpers::*;

/// Serves the serial device at `pty` on a TCP port, one connection at a time; `cut`
/// drops the current connection.
async fn bridge(pty: PathBuf, listener: TcpListener, cut: Arc<Notify>, accepted: Arc<AtomicUsize>) {
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            return;
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        let Ok(mut serial) = sms2fa::modem::open_port(&pty, 115_200) else {
            continue;
        };
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut tcp, &mut serial) => {}
            () = cut.notified() => {}
        }
    }
}

#[tokio::test]
async fn a_modem_over_raw_tcp_sends_and_survives_a_dropped_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let address = listener.local_addr().expect("address");
    let cut = Arc::new(Notify::new());
    let bridge_cut = cut.clone();
    let accepted = Arc::new(AtomicUsize::new(0));
    let bridge_accepted = accepted.clone();
    let app = spawn_app_with(move |c| {
        let pty = c.modems[0].device.clone();
        let listener = TcpListener::from_std(listener).expect("tokio listener");
        tokio::spawn(bridge(pty, listener, bridge_cut, bridge_accepted));
        c.modems[0].device = format!("tcp://{address}").into();
    })
    .await;
    app.wait_ready().await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    let modems = app.modem_status[0].borrow().clone();
    assert_eq!(modems.identity.model.as_deref(), Some("SIMULATOR"));

    app.send_code("Login", TO).await;
    let sms = app.nth_sms(1).await;
    let (status, body) = app.verify("Login", TO, &code_in(&sms)).await;
    assert_eq!(status, 200, "{body}");

    // The terminal server drops the connection: the daemon notices, reconnects, and
    // the next code goes out.
    cut.notify_one();
    let other = "+13216549800";
    app.send_code("Login", other).await;
    let sms = app.nth_sms(2).await;
    assert_eq!(sms.number, other);
    let (status, body) = app.verify("Login", other, &code_in(&sms)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "one reconnect");
}
