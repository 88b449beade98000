//! The modem task driven over an in-memory pipe, the simulator at its other end: no
//! pty, no HTTP, no store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::{ModemConfig, SmsConfig};
use crate::sim::{SimOptions, SmsLog};
use crate::sms::PhoneNumber;

/// Each connect starts a fresh simulated session on a new pipe, as a modem reopened.
pub(crate) struct SimConnector {
    pub options: SimOptions,
    pub log: SmsLog,
}

#[async_trait]
impl Connector for SimConnector {
    async fn connect(&self) -> std::io::Result<Link> {
        let (ours, theirs) = tokio::io::duplex(4096);
        tokio::spawn(crate::sim::run(
            theirs,
            self.options.clone(),
            self.log.clone(),
        ));
        Ok(Box::new(ours))
    }
}

pub(crate) fn settings(adjust: impl FnOnce(&mut ModemConfig)) -> ModemSettings {
    let mut config = ModemConfig::new("pipe0", "/nonexistent".into());
    config.send_timeout_secs = 3;
    adjust(&mut config);
    ModemSettings::from_config(&config, &SmsConfig::default())
}

pub(crate) async fn await_state(handle: &ModemHandle, state: ModemState) {
    let mut status = handle.status.clone();
    tokio::time::timeout(
        Duration::from_secs(20),
        status.wait_for(|s| s.state == state),
    )
    .await
    .unwrap_or_else(|_| panic!("not {state:?} within 20 s: {:?}", handle.status.borrow()))
    .expect("the task runs");
}

pub(crate) async fn send(handle: &ModemHandle, to: &str, text: &str) -> Result<Vec<u8>, SendError> {
    let (reply, answer) = oneshot::channel();
    handle
        .jobs
        .send(SendJob {
            to: PhoneNumber::parse(to).expect("number"),
            text: text.to_owned(),
            expires_at: Utc::now() + chrono::Duration::minutes(5),
            reply,
        })
        .await
        .expect("the task takes jobs");
    answer.await.expect("the task answers")
}

/// Outlets whose received SMS are all kept at once (and dropped).
pub(crate) fn outlets() -> (Outlets, mpsc::UnboundedReceiver<DeliveryReport>) {
    let (reports, reports_rx) = mpsc::unbounded_channel();
    let (incoming, mut incoming_rx) = mpsc::unbounded_channel::<IncomingSms>();
    tokio::spawn(async move {
        while let Some(sms) = incoming_rx.recv().await {
            let _ = sms.kept.send(true);
        }
    });
    let outlets = Outlets {
        changed: Arc::new(Notify::new()),
        reports,
        incoming,
    };
    (outlets, reports_rx)
}

pub(crate) fn spawn(
    settings: ModemSettings,
    options: SimOptions,
    log: SmsLog,
) -> (
    ModemHandle,
    CancellationToken,
    mpsc::UnboundedReceiver<DeliveryReport>,
) {
    let stop = CancellationToken::new();
    let (outlets, reports_rx) = outlets();
    let handle = spawn_modem_with(
        settings,
        Arc::new(SimConnector { options, log }),
        outlets,
        stop.clone(),
    );
    (handle, stop, reports_rx)
}

#[tokio::test]
async fn a_modem_task_sends_over_any_byte_stream() {
    let log = SmsLog::in_memory();
    let (handle, stop, _reports) = spawn(settings(|_| {}), SimOptions::default(), log.clone());
    await_state(&handle, ModemState::Ready).await;
    let references = send(&handle, "+13216549878", "Your code is 402931")
        .await
        .expect("sent");
    assert_eq!(references.len(), 1);
    let sms = log.all();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].number, "+13216549878");
    assert_eq!(sms[0].text, "Your code is 402931");
    assert_eq!(handle.status.borrow().sent, 1);
    stop.cancel();
}

/// What the task wrote on every link it opened.
#[derive(Clone, Default)]
pub(crate) struct Written(Arc<std::sync::Mutex<Vec<u8>>>);

impl Written {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

/// A stream that keeps a copy of what is written to it.
struct Tap<S> {
    inner: S,
    written: Written,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Tap<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Tap<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &poll {
            let mut written = self.written.0.lock().expect("not poisoned");
            written.extend_from_slice(&buf[..*n]);
        }
        poll
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

struct TappedSim {
    sim: SimConnector,
    written: Written,
    opened: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Connector for TappedSim {
    async fn connect(&self) -> std::io::Result<Link> {
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let link = self.sim.connect().await?;
        Ok(Box::new(Tap {
            inner: link,
            written: self.written.clone(),
        }))
    }
}

/// A modem silent long enough that a health check and the `AT` after it go
/// unanswered: the configured reset is written, then the link reopened, and the modem
/// is ready again once it speaks.
async fn reset_of_a_silent_modem(reset: crate::config::ResetMode) -> String {
    let options = SimOptions::default();
    let sim = options.handle.clone();
    let written = Written::default();
    let connector = Arc::new(TappedSim {
        sim: SimConnector {
            options,
            log: SmsLog::in_memory(),
        },
        written: written.clone(),
        opened: Default::default(),
    });
    let stop = CancellationToken::new();
    let (outlets, _reports_rx) = outlets();
    let handle = spawn_modem_with(
        settings(|m| {
            m.health_interval_secs = 1;
            m.reset = reset;
        }),
        connector.clone(),
        outlets,
        stop.clone(),
    );
    await_state(&handle, ModemState::Ready).await;
    sim.silence_for(Duration::from_secs(30));
    await_state(&handle, ModemState::Connecting).await;
    await_state(&handle, ModemState::Ready).await;
    assert!(
        connector.opened.load(std::sync::atomic::Ordering::Relaxed) >= 2,
        "the port was reopened"
    );
    stop.cancel();
    written.text()
}

#[tokio::test(start_paused = true)]
async fn reset_cfun11_reboots_the_module() {
    let written = reset_of_a_silent_modem(crate::config::ResetMode::Cfun11).await;
    assert!(written.contains("AT+CFUN=1,1\r"), "{written:?}");
    assert!(!written.contains("AT+CFUN=0\r"), "{written:?}");
}

#[tokio::test(start_paused = true)]
async fn reset_cfun01_turns_the_radio_off_and_on() {
    let written = reset_of_a_silent_modem(crate::config::ResetMode::Cfun01).await;
    let off = written.find("AT+CFUN=0\r").expect("radio off");
    let on = written.find("AT+CFUN=1\r").expect("radio on");
    assert!(off < on, "{written:?}");
    assert!(!written.contains("AT+CFUN=1,1"), "{written:?}");
}

#[tokio::test(start_paused = true)]
async fn reset_none_only_reopens_the_port() {
    let written = reset_of_a_silent_modem(crate::config::ResetMode::None).await;
    assert!(!written.contains("AT+CFUN"), "{written:?}");
}
