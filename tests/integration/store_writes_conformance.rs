//! The API's lead and contact writes on both stores (`LeadWrites`, `ContactWrites`): the
//! same answers, timelines, browser links and contact lookups on Redis and in memory.

use footfall::domain::ids::*;
use footfall::domain::lead::{Contact, Lead};
use footfall::domain::pipeline::Stage;
use footfall::domain::timeline::TimelineEntry;
use footfall::domain::visitor::VisitorId;
use footfall::store::{ContactRecordData, ContactWrite, LeadCreated, NewLead, SubmissionOutcome};

use crate::common::stores::{Shared, conformance};
use crate::store_conformance::{ACCOUNT, lead, submission, submit};

conformance!(
    on_redis, on_the_embedded_store, retention 60;
    an_api_lead_is_stored_with_its_timeline_and_browser,
    a_contact_change_reaches_its_leads_and_moves_its_lookups,
);

const FIRST_CONTACT: u64 = 1002;

fn api_lead(id: u64, email: &str, at: i64) -> Lead {
    let mut l = lead(id, at);
    l.status_id = StatusId(FIRST_CONTACT);
    l.contacts[0].email = Some(email.to_owned());
    l
}

fn new_lead(l: Lead, visitor: Option<VisitorId>, at: i64) -> NewLead {
    let keys = vec![format!(
        "email:{}",
        l.contacts[0].email.clone().unwrap_or_default()
    )];
    NewLead {
        lead: l,
        contact_keys: keys,
        visitor,
        at,
        link_retention_secs: 3600,
    }
}

async fn an_api_lead_is_stored_with_its_timeline_and_browser(store: Shared) {
    let v = VisitorId::mint();
    let first = store
        .create_lead(&new_lead(api_lead(1, "a@b.co", 10), Some(v), 10))
        .await
        .unwrap();
    assert_eq!(
        first,
        LeadCreated {
            previous_lead: None
        }
    );
    assert_eq!(
        store.get_leads(ACCOUNT, &[LeadId(1)]).await.unwrap(),
        [api_lead(1, "a@b.co", 10)]
    );
    assert_eq!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap(),
        [
            TimelineEntry::LeadAdded {
                at: 10,
                to: Stage {
                    pipeline_id: PipelineId(1),
                    status_id: StatusId(FIRST_CONTACT),
                },
            },
            TimelineEntry::VisitorLinked {
                at: 10,
                visitor: v,
                previous_lead: None,
            },
        ]
    );
    assert_eq!(
        store.visitor(ACCOUNT, v).await.unwrap().lead,
        Some(LeadId(1))
    );
    // Another lead of the same browser takes it, and the first is told.
    let second = store
        .create_lead(&new_lead(api_lead(2, "b@b.co", 20), Some(v), 20))
        .await
        .unwrap();
    assert_eq!(second.previous_lead, Some(LeadId(1)));
    assert!(matches!(
        store.timeline(ACCOUNT, LeadId(1)).await.unwrap().last(),
        Some(TimelineEntry::VisitorMoved {
            to_lead: LeadId(2),
            ..
        })
    ));
    // Without a browser: no link; the lead list has all three, newest first.
    store
        .create_lead(&new_lead(api_lead(3, "c@b.co", 30), None, 30))
        .await
        .unwrap();
    assert_eq!(store.timeline(ACCOUNT, LeadId(3)).await.unwrap().len(), 1);
    assert_eq!(
        store.lead_ids(ACCOUNT).await.unwrap(),
        [LeadId(3), LeadId(2), LeadId(1)]
    );
    // An id already taken writes nothing.
    assert!(
        store
            .create_lead(&new_lead(api_lead(3, "d@b.co", 40), None, 40))
            .await
            .is_err()
    );
    assert_eq!(store.timeline(ACCOUNT, LeadId(3)).await.unwrap().len(), 1);
}

async fn a_contact_change_reaches_its_leads_and_moves_its_lookups(store: Shared) {
    // Lead 5 (open, First contact) found by x@b.co.
    store
        .create_lead(&new_lead(api_lead(5, "x@b.co", 10), None, 10))
        .await
        .unwrap();
    let v = VisitorId::mint();
    let duplicate_of = |o: SubmissionOutcome| match o {
        SubmissionOutcome::Created { duplicate_of, .. } => duplicate_of,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        duplicate_of(submit(&store, &submission(6, "x@b.co", v, 20)).await),
        Some(LeadId(5))
    );
    let changed = Contact {
        id: ContactId(5),
        name: "Anna K.".into(),
        phone: None,
        email: Some("y@b.co".into()),
        is_main: false,
    };
    let record = ContactRecordData {
        contact: changed.clone(),
        created_at: 10,
        updated_at: 30,
    };
    store
        .save_contact(&ContactWrite {
            account: ACCOUNT,
            record: record.clone(),
            leads: vec![LeadId(5)],
            old_keys: vec!["email:x@b.co".into()],
            new_keys: vec!["email:y@b.co".into()],
        })
        .await
        .unwrap();
    let on_lead = &store.get_leads(ACCOUNT, &[LeadId(5)]).await.unwrap()[0].contacts[0];
    assert_eq!(on_lead.name, "Anna K.");
    assert_eq!(on_lead.email.as_deref(), Some("y@b.co"));
    assert_eq!(on_lead.phone, None, "a removed phone is gone from the lead");
    assert!(on_lead.is_main, "the lead's main contact stays main");
    assert_eq!(store.contact_records(ACCOUNT).await.unwrap(), [record]);
    // The old email no longer finds lead 5; the new one does. Lead 6 took x@b.co's key
    // when submitted (it pointed at 5 then, so it was left); it is gone now.
    assert_eq!(
        duplicate_of(submit(&store, &submission(7, "x@b.co", VisitorId::mint(), 40)).await),
        None
    );
    assert_eq!(
        duplicate_of(submit(&store, &submission(8, "y@b.co", VisitorId::mint(), 50)).await),
        Some(LeadId(5))
    );
}
