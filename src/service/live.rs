//! Live updates for the console: "lead N of account A changed". Published when a visit
//! of a linked visitor starts, an event fires, a delivery is attempted, a lead moves.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::domain::ids::{AccountId, LeadId};

#[derive(Debug, Clone, Serialize)]
pub struct LiveUpdate {
    pub account_id: AccountId,
    pub lead_id: LeadId,
    /// What happened: `visit`, `event`, `delivery`, `moved`, `created`, `note`.
    pub what: &'static str,
}

#[derive(Clone)]
pub struct Live {
    tx: broadcast::Sender<LiveUpdate>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Live {
    pub fn publish(&self, account_id: AccountId, lead_id: LeadId, what: &'static str) {
        let _ = self.tx.send(LiveUpdate {
            account_id,
            lead_id,
            what,
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveUpdate> {
        self.tx.subscribe()
    }
}
