//! Live updates for the console: "lead N of account A changed". Published when a visit
//! of a linked visitor starts, an event fires, a delivery is attempted, a lead moves.
//! Updates travel through the store (Redis pub/sub), so a console connected to one
//! instance sees what happens on every instance.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::domain::ids::{AccountId, LeadId};
use crate::store::Store;

/// What happened to a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveKind {
    /// A visit of one of its browsers started.
    Visit,
    /// An event fired.
    Event,
    /// A delivery was attempted.
    Delivery,
    Moved,
    /// Created from a form (or a known contact's lead took a submission).
    Created,
    Note,
    /// The demo inbox received a webhook.
    Inbox,
    /// One of its browsers submitted a form for another lead.
    VisitorMoved,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveUpdate {
    pub account_id: AccountId,
    pub lead_id: LeadId,
    pub what: LiveKind,
}

pub struct Live {
    tx: broadcast::Sender<LiveUpdate>,
    store: Arc<dyn Store>,
    stop: CancellationToken,
}

impl Live {
    /// Starts forwarding the updates of every instance to this instance's subscribers.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let tx = broadcast::channel(1024).0;
        let stop = CancellationToken::new();
        tokio::spawn(forward(store.clone(), tx.clone(), stop.clone()));
        Self { tx, store, stop }
    }

    /// Publishes an update off the caller's path; a lost update only delays a console.
    pub fn publish(&self, account_id: AccountId, lead_id: LeadId, what: LiveKind) {
        let update = LiveUpdate {
            account_id,
            lead_id,
            what,
        };
        let message = match serde_json::to_string(&update) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(error = %e, "live update not serialised");
                return;
            }
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.publish_live(message).await {
                tracing::debug!(error = %e, "live update not published");
            }
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveUpdate> {
        self.tx.subscribe()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Subscribes, forwards, and subscribes again when the connection drops.
async fn forward(
    store: Arc<dyn Store>,
    tx: broadcast::Sender<LiveUpdate>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        match store.subscribe_live().await {
            Ok(mut messages) => loop {
                tokio::select! {
                    message = messages.next() => match message {
                        Some(m) => {
                            if let Ok(update) = serde_json::from_str(&m) {
                                let _ = tx.send(update);
                            }
                        }
                        None => break,
                    },
                    _ = stop.cancelled() => return,
                }
            },
            Err(e) => tracing::debug!(error = %e, "live updates unavailable; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {},
            _ = stop.cancelled() => return,
        }
    }
}
