//! Live updates for the console: "lead N of account A changed". Published when a visit
//! of a linked visitor starts, an event fires, a delivery is attempted, a lead moves.
//! Updates travel through the store (Redis pub/sub), so a console connected to one
//! instance sees what happens on every instance. Each account has a channel of its own
//! here, so a console's stream carries only its account's updates, and a token holds at
//! most `MAX_STREAMS_PER_ACCOUNT` streams at once (each holds a connection and a buffer).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
    /// It, or one of its browsers, was erased (privacy).
    Erased,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveUpdate {
    pub account_id: AccountId,
    pub lead_id: LeadId,
    pub what: LiveKind,
}

/// Streams one account (one API token) may hold open at once on an instance: enough for
/// a team's consoles, few enough that a leaked or looping client cannot hold the
/// instance's connections.
pub const MAX_STREAMS_PER_ACCOUNT: usize = 16;

/// Updates buffered per account for a slow reader; past this it is told to reload.
const CHANNEL_CAPACITY: usize = 256;

/// The live channels of this instance, one per account with a console connected.
type Channels = Arc<Mutex<HashMap<AccountId, broadcast::Sender<LiveUpdate>>>>;

pub struct Live {
    channels: Channels,
    store: Arc<dyn Store>,
    stop: CancellationToken,
}

/// A stream over the cap of its account.
#[derive(Debug, thiserror::Error)]
#[error("this token already has {MAX_STREAMS_PER_ACCOUNT} live streams open; close one first")]
pub struct TooManyStreams;

impl Live {
    /// Starts forwarding the updates of every instance to this instance's subscribers.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let channels = Channels::default();
        let stop = CancellationToken::new();
        tokio::spawn(forward(store.clone(), channels.clone(), stop.clone()));
        Self {
            channels,
            store,
            stop,
        }
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

    /// The updates of one account, unless it already has its cap of streams open. The
    /// stream counts as open as long as the receiver lives.
    pub fn subscribe(
        &self,
        account: AccountId,
    ) -> Result<broadcast::Receiver<LiveUpdate>, TooManyStreams> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.retain(|_, tx| tx.receiver_count() > 0);
        let tx = channels
            .entry(account)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0);
        if tx.receiver_count() >= MAX_STREAMS_PER_ACCOUNT {
            return Err(TooManyStreams);
        }
        Ok(tx.subscribe())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Subscribes, forwards, and subscribes again when the connection drops.
async fn forward(store: Arc<dyn Store>, channels: Channels, stop: CancellationToken) {
    while !stop.is_cancelled() {
        match store.subscribe_live().await {
            Ok(mut messages) => loop {
                tokio::select! {
                    message = messages.next() => match message {
                        Some(m) => {
                            if let Ok(update) = serde_json::from_str::<LiveUpdate>(&m) {
                                let channels = channels.lock().unwrap_or_else(|p| p.into_inner());
                                if let Some(tx) = channels.get(&update.account_id) {
                                    let _ = tx.send(update);
                                }
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
