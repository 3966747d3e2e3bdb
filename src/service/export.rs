//! The leads export: the leads a list filter finds, each with its stage, contacts,
//! source and visits, as CSV (`domain::export`). Reads every lead's browsers' histories:
//! an export is a report, not a hot path.

use super::{Result, Services};
use crate::domain::export::{HEADER, iso_time, touch_cells, write_row};
use crate::domain::ids::AccountId;
use crate::domain::lead::{LeadFilter, LeadOrder};
use crate::domain::pipeline::Pipeline;
use crate::domain::source::LeadSource;

impl Services {
    /// The CSV of the account's leads that match, newest first (or in `order`).
    pub async fn export_leads(
        &self,
        account: AccountId,
        filter: &LeadFilter,
        order: Option<LeadOrder>,
    ) -> Result<String> {
        let leads = self
            .search_leads(account, filter, usize::MAX, order)
            .await?;
        let pipelines: Vec<Pipeline> = self.records(account).await?;
        let mut out = String::new();
        write_row(&mut out, &HEADER);
        for lead in &leads {
            let pipeline = pipelines.iter().find(|p| p.id == lead.pipeline_id);
            let stage = pipeline
                .and_then(|p| p.status(lead.status_id))
                .map_or_else(|| lead.status_id.to_string(), |s| s.name.clone());
            let visits = self.lead_visits(account, lead.id).await?;
            let source = LeadSource::of_visits(visits.iter().map(|(_, v)| v), lead.created_at);
            let contact = lead.main_contact();
            let mut row = vec![
                lead.id.to_string(),
                lead.name.clone(),
                pipeline.map(|p| p.name.clone()).unwrap_or_default(),
                stage,
                contact.map(|c| c.name.clone()).unwrap_or_default(),
                contact.and_then(|c| c.phone.clone()).unwrap_or_default(),
                contact.and_then(|c| c.email.clone()).unwrap_or_default(),
                iso_time(lead.created_at),
            ];
            row.extend(touch_cells(source.first_touch.as_ref(), true));
            row.extend(touch_cells(source.last_touch.as_ref(), false));
            row.push(visits.len().to_string());
            row.push(
                visits
                    .iter()
                    .map(|(_, v)| v.started_at)
                    .max()
                    .map(iso_time)
                    .unwrap_or_default(),
            );
            write_row(&mut out, &row);
        }
        Ok(out)
    }
}
