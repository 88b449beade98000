//! Group commit: one task owns `sled::Db::flush`, and every caller that asked for
//! durability while a flush was running is served by the next one. sled 0.34 must not
//! run `flush_async` concurrently (upstream deadlock), hence a single flusher and a
//! blocking flush on the blocking pool.

use tokio::sync::{mpsc, oneshot};

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Debug, Clone)]
pub(super) struct Flusher {
    requests: mpsc::UnboundedSender<Waiter>,
}

impl Flusher {
    /// Must be called inside a tokio runtime.
    pub(super) fn spawn(db: sled::Db) -> Self {
        let (requests, mut incoming) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            while let Some(first) = incoming.recv().await {
                let mut waiters = vec![first];
                while let Ok(more) = incoming.try_recv() {
                    waiters.push(more);
                }
                let db = db.clone();
                let outcome = match tokio::task::spawn_blocking(move || db.flush()).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("flush task failed: {e}")),
                };
                for waiter in waiters {
                    // A waiter that gave up (its request was cancelled) needs no answer.
                    let _ = waiter.send(outcome.clone());
                }
            }
        });
        Self { requests }
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
