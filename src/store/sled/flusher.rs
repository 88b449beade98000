//! Group commit: one thread owns `sled::Db::flush`, and every caller that asked for
//! durability while a flush was running is served by the next one. sled 0.34 must not
//! run `flush_async` concurrently (upstream deadlock), hence a single flusher. A thread
//! of its own rather than a task: under load the runtime's workers are busy with
//! connections, and a flush should not wait for one of them to be free.

use std::sync::mpsc;

use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Debug, Clone)]
pub(super) struct Flusher {
    requests: mpsc::Sender<Waiter>,
}

impl Flusher {
    /// The thread ends when the last `Flusher` (the last `Store` clone) is dropped.
    pub(super) fn spawn(db: ::sled::Db) -> std::io::Result<Self> {
        let (requests, incoming) = mpsc::channel::<Waiter>();
        std::thread::Builder::new()
            .name("sms2fa-flush".into())
            .spawn(move || {
                while let Ok(first) = incoming.recv() {
                    let mut waiters = vec![first];
                    waiters.extend(incoming.try_iter());
                    let outcome = db.flush().map(drop).map_err(|e| e.to_string());
                    for waiter in waiters {
                        // A waiter that gave up (its request was cancelled) needs no
                        // answer.
                        let _ = waiter.send(outcome.clone());
                    }
                }
            })?;
        Ok(Self { requests })
    }

    /// Resolves once everything written before the call is on disk.
    pub(super) async fn flush(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(tx)
            .map_err(|_| "the flusher has stopped".to_owned())?;
        rx.await.map_err(|_| "the flusher has stopped".to_owned())?
    }
}
