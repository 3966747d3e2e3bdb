//! The webhook body of an event, made at its first attempt and sent unchanged on every
//! retry. A delayed action first checks that its lead is still in the action's stages and
//! the action still enabled.

use crate::domain::action::Action;
use crate::domain::event_record::EventRecord;
use crate::domain::macros::{Macros, substitute_settings};
use crate::domain::source::last_campaign;
use crate::domain::webhook;
use crate::service::Services;
use crate::store::{StoreResult, catalog};

/// A direct visit (no campaign, no referrer from another site) reports the campaign of
/// the lead's latest earlier visit that had one, read here, off the request path.
async fn inherit_campaign(
    services: &Services,
    lead: &crate::domain::lead::Lead,
    event: &mut EventRecord,
) -> StoreResult<()> {
    let Some(visit) = event.visit.as_mut() else {
        return Ok(());
    };
    let Some(source) = visit.source.as_mut().filter(|s| s.is_direct()) else {
        return Ok(());
    };
    let visits = match services.lead_visits(lead.account_id, lead.id).await {
        Ok(visits) => visits,
        Err(crate::service::Error::Store(e)) => return Err(e),
        Err(_) => return Ok(()),
    };
    let started = source.started_at * 1000;
    if let Some(utm) = last_campaign(visits.iter().map(|(_, v)| v), started) {
        source.utm = utm;
    }
    Ok(())
}

/// The event's body, or why the event is cancelled instead (`Err(reason)`).
pub async fn prepare(
    services: &Services,
    event: &mut EventRecord,
) -> StoreResult<Result<String, String>> {
    let store = &*services.store;
    let Some(account) = services.accounts.get(event.account_id) else {
        return Ok(Err("the account is no longer configured".into()));
    };
    let Some(lead) = store
        .get_leads(event.account_id, &[event.lead_id])
        .await?
        .pop()
    else {
        return Ok(Err("the lead no longer exists".into()));
    };
    let action: Option<Action> = catalog::get(store, event.account_id, event.action_id).await?;
    let Some(action) = action else {
        return Ok(Err("the action was deleted".into()));
    };
    if event.delayed_by > 0 {
        if !action.enabled {
            return Ok(Err("the action was disabled".into()));
        }
        if !action.covers(lead.stage()) {
            return Ok(Err(format!(
                "the lead left the action's stages (now in status {} of pipeline {})",
                lead.status_id, lead.pipeline_id
            )));
        }
        event.stage = lead.stage();
    }
    if event.body.is_none() {
        inherit_campaign(services, &lead, event).await?;
    }
    let first_touch = match Macros::need_first_touch(&action.settings) {
        true => match services.lead_source(&lead).await {
            Ok(source) => source.first_touch,
            Err(crate::service::Error::Store(e)) => return Err(e),
            Err(_) => None,
        },
        false => None,
    };
    let macros = Macros {
        lead: &lead,
        first_touch: first_touch.as_ref(),
        visit: event.visit.as_ref(),
    };
    let settings = substitute_settings(&action.settings, &macros);
    Ok(webhook::body(event, &account.subdomain, settings)
        .map_err(|e| format!("the webhook body could not be made: {e}")))
}
