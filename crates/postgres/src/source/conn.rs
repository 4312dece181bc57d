//! One PostgreSQL session of a source: the client, and a driver task that polls the
//! connection and forwards its notifications.

use futures_util::{StreamExt, stream};
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Notification};

use crate::Ident;

/// What the driver forwards: a notification, or the error that ended the connection.
pub(super) type Message = Result<Notification, tokio_postgres::Error>;

/// A connected session. Dropping it closes the connection.
pub(super) struct Conn {
    pub(super) client: Client,
    messages: mpsc::UnboundedReceiver<Message>,
    driver: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Conn {
    /// Connects and starts the driver.
    pub(super) async fn open(config: &Config) -> Result<Self, tokio_postgres::Error> {
        let (client, mut connection) = config.connect(NoTls).await?;
        // Unbounded: the driver must never wait on the source, or the replies to the
        // source's own queries would wait behind it. The source only moves events into
        // the in-memory bus, so the queue stays short.
        let (tx, messages) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut polled = stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = polled.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(Ok(n)).is_err() {
                            return;
                        }
                    }
                    Ok(AsyncMessage::Notice(notice)) => {
                        tracing::debug!(notice = %notice.message(), "postgres notice");
                    }
                    Ok(_) => {}
                    Err(err) => {
                        let _ = tx.send(Err(err));
                        return;
                    }
                }
            }
        });
        Ok(Self {
            client,
            messages,
            driver,
        })
    }

    /// `LISTEN`s on every channel.
    pub(super) async fn listen(&self, channels: &[Ident]) -> Result<(), tokio_postgres::Error> {
        let script: String = channels
            .iter()
            .map(|c| format!("LISTEN {};", c.to_sql()))
            .collect();
        self.client.batch_execute(&script).await
    }

    /// The next notification; `None` once the connection is gone (an error, if any, comes
    /// first).
    pub(super) async fn recv(&mut self) -> Option<Message> {
        self.messages.recv().await
    }

    /// A notification already received, without waiting.
    pub(super) fn try_recv(&mut self) -> Option<Message> {
        self.messages.try_recv().ok()
    }
}
