//! Where leads came from (`domain::source`): read from the histories of their browsers,
//! which keep every visit's landing page.

use super::{Result, Services};
use crate::domain::ids::{AccountId, LeadId};
use crate::domain::lead::{Lead, VisitorLink};
use crate::domain::source::LeadSource;

impl Services {
    /// The lead's first and last touch.
    pub async fn lead_source(&self, lead: &Lead) -> Result<LeadSource> {
        let visits = self.lead_visits(lead.account_id, lead.id).await?;
        Ok(LeadSource::of_visits(
            visits.iter().map(|(_, v)| v),
            lead.created_at,
        ))
    }

    /// A lead with its linked browsers and its source, as `GET /leads/{id}` shows it.
    pub async fn lead_with_source(
        &self,
        account: AccountId,
        id: LeadId,
    ) -> Result<(Lead, Vec<VisitorLink>, LeadSource)> {
        let (lead, links) = self.lead_with_browsers(account, id).await?;
        let source = self.lead_source(&lead).await?;
        Ok((lead, links, source))
    }
}
