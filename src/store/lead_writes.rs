//! Leads made through the API (`POST /leads`, `/leads/complex`): straight into a stage,
//! with the contacts given and, when the site's backend passed the page's `visitor_uid`,
//! the browser linked exactly as a form links it. One atomic step on each backend.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::ids::LeadId;
use crate::domain::lead::Lead;
use crate::domain::time::Millis;
use crate::domain::visitor::VisitorId;

/// A lead to create, its ids allocated: the lead (its contacts on it, the first main),
/// its `LeadAdded` timeline entry, the account's lead index, the contact index for its
/// contacts, and the browser's link.
#[derive(Debug, Clone)]
pub struct NewLead {
    pub lead: Lead,
    /// The keys the lead's contacts are found by (`email:…`, `phone:…`): they point at
    /// this lead, their newest, from now on.
    pub contact_keys: Vec<String>,
    /// The browser to link, its history already kept for `link_retention_secs`
    /// (`Leads::reserve_submission`).
    pub visitor: Option<VisitorId>,
    pub at: Millis,
    pub link_retention_secs: u64,
}

/// What became of a new lead: the lead the browser left, if it belonged to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadCreated {
    pub previous_lead: Option<LeadId>,
}

#[async_trait]
pub trait LeadWrites: Send + Sync {
    /// Records a lead made through the API (see [`NewLead`]), all or nothing.
    async fn create_lead(&self, new: &NewLead) -> StoreResult<LeadCreated>;
}
