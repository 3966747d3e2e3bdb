//! How leads and their browser links are laid out in Redis hashes. Every value is short
//! (contacts are flat fields, not one JSON value), so that Redis keeps a lead's hash in its
//! compact listpack encoding — the browser links added to it later stay small too.

use std::collections::HashMap;

use crate::domain::ids::{AccountId, ContactId, LeadId, PipelineId, StatusId};
use crate::domain::lead::{Contact, Lead, VisitorLink};
use crate::domain::pipeline::Stage;
use crate::domain::time::Millis;
use crate::domain::visitor::VisitorId;
use crate::store::{StoreResult, corrupt};

/// A lead as the fields of its hash.
pub fn lead_fields(lead: &Lead) -> Vec<(String, String)> {
    let mut fields = vec![
        ("a".to_owned(), lead.account_id.to_string()),
        ("n".to_owned(), lead.name.clone()),
        ("p".to_owned(), lead.pipeline_id.to_string()),
        ("s".to_owned(), lead.status_id.to_string()),
        ("c".to_owned(), lead.created_at.to_string()),
        ("u".to_owned(), lead.updated_at.to_string()),
    ];
    for (i, c) in lead.contacts.iter().enumerate() {
        fields.push((format!("c{i}i"), c.id.to_string()));
        fields.push((format!("c{i}n"), c.name.clone()));
        fields.push((format!("c{i}m"), u8::from(c.is_main).to_string()));
        if let Some(phone) = &c.phone {
            fields.push((format!("c{i}p"), phone.clone()));
        }
        if let Some(email) = &c.email {
            fields.push((format!("c{i}e"), email.clone()));
        }
    }
    fields
}

/// A lead from its hash's fields; None for an empty hash (no such lead).
pub fn lead_from_fields(id: LeadId, mut f: HashMap<String, String>) -> StoreResult<Option<Lead>> {
    if !f.contains_key("a") {
        return Ok(None);
    }
    let mut take = |k: &str| {
        f.remove(k)
            .ok_or_else(|| corrupt(format!("lead {id} lacks {k}")))
    };
    let num = |s: String| s.parse::<u64>().map_err(corrupt);
    let time = |s: String| s.parse::<Millis>().map_err(corrupt);
    let mut lead = Lead {
        id,
        account_id: AccountId(num(take("a")?)?),
        name: take("n")?,
        pipeline_id: PipelineId(num(take("p")?)?),
        status_id: StatusId(num(take("s")?)?),
        created_at: time(take("c")?)?,
        updated_at: time(take("u")?)?,
        contacts: Vec::new(),
    };
    for i in 0.. {
        let Some(contact_id) = f.remove(&format!("c{i}i")) else {
            break;
        };
        lead.contacts.push(Contact {
            id: ContactId(contact_id.parse().map_err(corrupt)?),
            name: f.remove(&format!("c{i}n")).unwrap_or_default(),
            phone: f.remove(&format!("c{i}p")),
            email: f.remove(&format!("c{i}e")),
            is_main: f.remove(&format!("c{i}m")).as_deref() == Some("1"),
        });
    }
    Ok(Some(lead))
}

pub fn stage_of(p: &str, s: &str) -> StoreResult<Stage> {
    Ok(Stage {
        pipeline_id: PipelineId(p.parse().map_err(corrupt)?),
        status_id: StatusId(s.parse().map_err(corrupt)?),
    })
}

/// The browser links among a lead hash's fields (`v:<visitor>` = `linked_at|since|until`,
/// empty when absent), by the time they were linked.
pub fn links_from_fields(fields: &HashMap<String, String>) -> StoreResult<Vec<VisitorLink>> {
    let mut links = fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("v:")?, v)))
        .map(|(visitor, v)| decode_link(visitor, v))
        .collect::<StoreResult<Vec<_>>>()?;
    links.sort_by_key(|l| (l.linked_at, l.visitor));
    Ok(links)
}

fn decode_link(visitor: &str, value: &str) -> StoreResult<VisitorLink> {
    let bad = || corrupt(format!("visitor link {visitor}: {value}"));
    let mut parts = value.split('|');
    let mut next = || parts.next().ok_or_else(bad);
    let linked_at = next()?.parse().map_err(|_| bad())?;
    let opt = |s: &str| {
        (!s.is_empty())
            .then(|| s.parse())
            .transpose()
            .map_err(|_| bad())
    };
    let (since, until) = (opt(next()?)?, opt(next()?)?);
    Ok(VisitorLink {
        visitor: VisitorId::parse(visitor).ok_or_else(bad)?,
        linked_at,
        since,
        until,
    })
}
