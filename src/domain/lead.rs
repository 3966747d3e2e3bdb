//! Leads, their contacts, the browsers (visitors) linked to them, and Unsorted entries —
//! the incoming requests that a marketer accepts into the pipeline or declines.

use serde::{Deserialize, Serialize};

use super::ids::{AccountId, ContactId, FormId, LeadId, PipelineId, StatusId, UnsortedUid};
use super::pipeline::Stage;
use super::time::Millis;
use super::visitor::VisitorId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    pub id: LeadId,
    pub account_id: AccountId,
    pub name: String,
    pub pipeline_id: PipelineId,
    pub status_id: StatusId,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub contacts: Vec<Contact>,
}

impl Lead {
    pub fn stage(&self) -> Stage {
        Stage {
            pipeline_id: self.pipeline_id,
            status_id: self.status_id,
        }
    }

    /// The contact macros and "main contact only" features speak of.
    pub fn main_contact(&self) -> Option<&Contact> {
        self.contacts
            .iter()
            .find(|c| c.is_main)
            .or(self.contacts.first())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub is_main: bool,
}

/// What a lead search asks for; every given condition must hold.
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    pub status_id: Option<StatusId>,
    pub pipeline_id: Option<PipelineId>,
    /// Created at or after (Unix seconds).
    pub created_from: Option<i64>,
    /// Created at or before (Unix seconds).
    pub created_to: Option<i64>,
    /// Text in the lead's name or its contacts' name, phone or email (any case).
    pub query: Option<String>,
    /// amoCRM's `filter[id]`: one of these leads.
    pub ids: Vec<LeadId>,
    /// amoCRM's `filter[name]`: one of these names (any case).
    pub names: Vec<String>,
    /// amoCRM's `filter[pipeline_id]`: in one of these pipelines.
    pub pipeline_ids: Vec<PipelineId>,
    /// amoCRM's `filter[statuses]`: in one of these stages.
    pub stages: Vec<Stage>,
    /// Updated at or after / at or before (Unix seconds).
    pub updated_from: Option<i64>,
    pub updated_to: Option<i64>,
}

impl LeadFilter {
    pub fn matches(&self, lead: &Lead) -> bool {
        let created = super::time::to_secs(lead.created_at);
        let needle = self
            .query
            .as_deref()
            .map(str::to_lowercase)
            .filter(|q| !q.is_empty());
        let updated = super::time::to_secs(lead.updated_at);
        self.status_id.is_none_or(|s| lead.status_id == s)
            && self.pipeline_id.is_none_or(|p| lead.pipeline_id == p)
            && self.created_from.is_none_or(|f| created >= f)
            && self.created_to.is_none_or(|t| created <= t)
            && self.updated_from.is_none_or(|f| updated >= f)
            && self.updated_to.is_none_or(|t| updated <= t)
            && (self.ids.is_empty() || self.ids.contains(&lead.id))
            && (self.names.is_empty()
                || self
                    .names
                    .iter()
                    .any(|n| n.to_lowercase() == lead.name.to_lowercase()))
            && (self.pipeline_ids.is_empty() || self.pipeline_ids.contains(&lead.pipeline_id))
            && (self.stages.is_empty() || self.stages.contains(&lead.stage()))
            && needle.is_none_or(|q| {
                lead.name.to_lowercase().contains(&q)
                    || lead.contacts.iter().any(|c| {
                        [Some(&c.name), c.phone.as_ref(), c.email.as_ref()]
                            .into_iter()
                            .flatten()
                            .any(|v| v.to_lowercase().contains(&q))
                    })
            })
    }
}

/// A browser linked to a lead. Page views of the visitor belong to the lead from `since`
/// (`None`: including the anonymous history before the form) until `until` (`None`: still
/// linked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitorLink {
    pub visitor: VisitorId,
    pub linked_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Millis>,
}

impl VisitorLink {
    /// Whether a page view at `at` belongs to the lead through this link.
    pub fn covers(&self, at: Millis) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }
}

/// An entry of the Unsorted list (category `forms`), as amoCRM's `leads/unsorted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unsorted {
    pub uid: UnsortedUid,
    pub account_id: AccountId,
    pub category: String,
    pub pipeline_id: PipelineId,
    pub created_at: Millis,
    pub metadata: UnsortedMetadata,
    pub lead_id: LeadId,
    pub contact_id: ContactId,
}

/// What an Unsorted list asks for.
#[derive(Debug, Clone, Default)]
pub struct UnsortedFilter {
    pub pipeline_id: Option<PipelineId>,
    pub form_id: Option<String>,
}

impl UnsortedFilter {
    pub fn matches(&self, u: &Unsorted) -> bool {
        self.pipeline_id.is_none_or(|p| u.pipeline_id == p)
            && self
                .form_id
                .as_deref()
                .is_none_or(|f| u.metadata.form_id.as_str() == f)
    }
}

/// What amoCRM records about a form submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnsortedMetadata {
    pub form_id: FormId,
    pub form_name: String,
    pub form_page: String,
    pub ip: String,
    pub referer: String,
    pub visitor_uid: Option<String>,
    /// Unix seconds.
    pub form_sent_at: i64,
    /// The open lead whose contact (email or phone) this submission named: a possible
    /// duplicate, which the marketer merges by accepting this entry into that lead. The
    /// submission never joins that lead by itself (anyone can type someone's email).
    /// Always written (`null` when none): the store's submission step fills it in.
    #[serde(default)]
    pub duplicate_of_lead_id: Option<LeadId>,
    /// The campaign parameters of the visit the form was sent in (`domain::source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm: Option<super::source::Utm>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_windows_bound_the_history_a_lead_sees() {
        let anonymous = VisitorLink {
            visitor: VisitorId::mint(),
            linked_at: 100,
            since: None,
            until: Some(500),
        };
        assert!(anonymous.covers(0));
        assert!(anonymous.covers(499));
        assert!(!anonymous.covers(500));
        let relinked = VisitorLink {
            since: Some(500),
            until: None,
            ..anonymous
        };
        assert!(!relinked.covers(499));
        assert!(relinked.covers(10_000));
    }
}

/// The field a lead list is ordered by (amoCRM's `order[…]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadSortField {
    Id,
    CreatedAt,
    UpdatedAt,
}

/// The order of a lead list; without one, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadOrder {
    pub field: LeadSortField,
    pub ascending: bool,
}

impl LeadOrder {
    pub const FIELDS: [&str; 3] = ["id", "created_at", "updated_at"];

    /// From amoCRM's field name (one of `FIELDS`).
    pub fn parse(field: &str, ascending: bool) -> Option<Self> {
        let field = match field {
            "id" => LeadSortField::Id,
            "created_at" => LeadSortField::CreatedAt,
            "updated_at" => LeadSortField::UpdatedAt,
            _ => return None,
        };
        Some(Self { field, ascending })
    }

    /// Sorts `leads` in this order (ties by id, in the same direction).
    pub fn sort(&self, leads: &mut [Lead]) {
        leads.sort_by(|a, b| {
            let key = |l: &Lead| match self.field {
                LeadSortField::Id => (0, l.id.0),
                LeadSortField::CreatedAt => (l.created_at, l.id.0),
                LeadSortField::UpdatedAt => (l.updated_at, l.id.0),
            };
            let ord = key(a).cmp(&key(b));
            if self.ascending { ord } else { ord.reverse() }
        });
    }
}
