//! The embedded in-memory store: the zero-setup default when no Redis URL is configured.
//! Same contract as the Redis store (the conformance suite runs against both); nothing is
//! kept when the process ends.

use std::collections::{BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::*;

#[derive(Default)]
struct State {
    sequences: HashMap<Sequence, u64>,
    once: HashSet<String>,
    records: HashMap<(AccountId, RecordKind), Vec<(String, String)>>,
    aliases: HashMap<(RecordKind, String), String>,
    leads: HashMap<LeadId, Lead>,
    account_leads: HashMap<AccountId, Vec<LeadId>>,
    timelines: HashMap<LeadId, Vec<TimelineEntry>>,
    lead_visitors: HashMap<LeadId, Vec<VisitorLink>>,
    unsorted: HashMap<AccountId, Vec<Unsorted>>,
    visitors: HashMap<(AccountId, VisitorId), Visitor>,
    events: HashMap<EventId, EventRecord>,
    account_events: HashMap<AccountId, Vec<EventId>>,
    /// (eligible at, event id): due time, or lease end while claimed.
    schedule: BTreeSet<(Millis, EventId)>,
    eligible_at: HashMap<EventId, Millis>,
    handler_failing: HashMap<(AccountId, HandlerId), Millis>,
    /// key → (value, expires at)
    remembered: HashMap<String, (String, std::time::Instant)>,
    contacts: HashMap<(AccountId, String), LeadId>,
}

#[derive(Default)]
struct Visitor {
    last_seen: HashMap<crate::domain::ids::SiteId, Millis>,
    page_views: Vec<PageView>,
    state: VisitorState,
}

/// Nothing here expires by time: the embedded store lives as long as the process.
pub struct MemoryStore {
    state: Mutex<State>,
    live: tokio::sync::broadcast::Sender<String>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            live: tokio::sync::broadcast::channel(1024).0,
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl State {
    fn unschedule(&mut self, id: &EventId) {
        if let Some(at) = self.eligible_at.remove(id) {
            self.schedule.remove(&(at, id.clone()));
        }
    }

    fn schedule_at(&mut self, id: &EventId, at: Millis) {
        self.unschedule(id);
        self.schedule.insert((at, id.clone()));
        self.eligible_at.insert(id.clone(), at);
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn describe(&self) -> String {
        "embedded (in memory)".to_owned()
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn next_id(&self, seq: Sequence) -> StoreResult<u64> {
        let mut state = self.state.lock();
        let n = state.sequences.entry(seq).or_insert(0);
        *n += 1;
        Ok(seq.base() + *n)
    }

    async fn claim_once(&self, key: &str) -> StoreResult<bool> {
        Ok(self.state.lock().once.insert(key.to_owned()))
    }

    async fn put_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
        json: &str,
    ) -> StoreResult<()> {
        let mut state = self.state.lock();
        let records = state.records.entry((account, kind)).or_default();
        match records.iter_mut().find(|(k, _)| k == id) {
            Some(slot) => slot.1 = json.to_owned(),
            None => records.push((id.to_owned(), json.to_owned())),
        }
        Ok(())
    }

    async fn get_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
    ) -> StoreResult<Option<String>> {
        let state = self.state.lock();
        Ok(state
            .records
            .get(&(account, kind))
            .and_then(|r| r.iter().find(|(k, _)| k == id))
            .map(|(_, v)| v.clone()))
    }

    async fn list_records(&self, account: AccountId, kind: RecordKind) -> StoreResult<Vec<String>> {
        let state = self.state.lock();
        Ok(state
            .records
            .get(&(account, kind))
            .map(|r| r.iter().map(|(_, v)| v.clone()).collect())
            .unwrap_or_default())
    }

    async fn delete_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
    ) -> StoreResult<bool> {
        let mut state = self.state.lock();
        let Some(records) = state.records.get_mut(&(account, kind)) else {
            return Ok(false);
        };
        let before = records.len();
        records.retain(|(k, _)| k != id);
        Ok(records.len() != before)
    }

    async fn put_alias(&self, kind: RecordKind, alias: &str, target: &str) -> StoreResult<()> {
        self.state
            .lock()
            .aliases
            .insert((kind, alias.to_owned()), target.to_owned());
        Ok(())
    }

    async fn get_alias(&self, kind: RecordKind, alias: &str) -> StoreResult<Option<String>> {
        Ok(self
            .state
            .lock()
            .aliases
            .get(&(kind, alias.to_owned()))
            .cloned())
    }

    async fn insert_lead(&self, lead: &Lead, first: &TimelineEntry) -> StoreResult<()> {
        let mut state = self.state.lock();
        state.leads.insert(lead.id, lead.clone());
        state
            .account_leads
            .entry(lead.account_id)
            .or_default()
            .push(lead.id);
        state.timelines.insert(lead.id, vec![first.clone()]);
        Ok(())
    }

    async fn get_leads(&self, ids: &[LeadId]) -> StoreResult<Vec<Lead>> {
        let state = self.state.lock();
        Ok(ids
            .iter()
            .filter_map(|id| state.leads.get(id).cloned())
            .collect())
    }

    async fn lead_ids(&self, account: AccountId) -> StoreResult<Vec<LeadId>> {
        let state = self.state.lock();
        let mut ids = state
            .account_leads
            .get(&account)
            .cloned()
            .unwrap_or_default();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    async fn move_lead(
        &self,
        id: LeadId,
        to: Stage,
        at: Millis,
        expect: Option<Stage>,
    ) -> StoreResult<MoveOutcome> {
        let mut state = self.state.lock();
        let Some(lead) = state.leads.get_mut(&id) else {
            return Ok(MoveOutcome::NotFound);
        };
        let current = lead.stage();
        if expect.is_some_and(|e| e != current) {
            return Ok(MoveOutcome::Conflict { current });
        }
        lead.pipeline_id = to.pipeline_id;
        lead.status_id = to.status_id;
        lead.updated_at = at;
        Ok(MoveOutcome::Moved { from: current })
    }

    async fn rename_lead(&self, id: LeadId, name: &str, at: Millis) -> StoreResult<bool> {
        let mut state = self.state.lock();
        Ok(match state.leads.get_mut(&id) {
            Some(lead) => {
                lead.name = name.to_owned();
                lead.updated_at = at;
                true
            }
            None => false,
        })
    }

    async fn append_timeline(&self, lead: LeadId, entry: &TimelineEntry) -> StoreResult<()> {
        self.state
            .lock()
            .timelines
            .entry(lead)
            .or_default()
            .push(entry.clone());
        Ok(())
    }

    async fn timeline(&self, lead: LeadId) -> StoreResult<Vec<TimelineEntry>> {
        Ok(self
            .state
            .lock()
            .timelines
            .get(&lead)
            .cloned()
            .unwrap_or_default())
    }

    async fn put_lead_visitor(&self, lead: LeadId, link: &VisitorLink) -> StoreResult<()> {
        let mut state = self.state.lock();
        let links = state.lead_visitors.entry(lead).or_default();
        match links.iter_mut().find(|l| l.visitor == link.visitor) {
            Some(slot) => *slot = link.clone(),
            None => links.push(link.clone()),
        }
        Ok(())
    }

    async fn lead_visitors(&self, lead: LeadId) -> StoreResult<Vec<VisitorLink>> {
        Ok(self
            .state
            .lock()
            .lead_visitors
            .get(&lead)
            .cloned()
            .unwrap_or_default())
    }

    async fn put_unsorted(&self, entry: &Unsorted) -> StoreResult<()> {
        let mut state = self.state.lock();
        let list = state.unsorted.entry(entry.account_id).or_default();
        list.retain(|u| u.uid != entry.uid);
        list.push(entry.clone());
        Ok(())
    }

    async fn get_unsorted(
        &self,
        account: AccountId,
        uid: &UnsortedUid,
    ) -> StoreResult<Option<Unsorted>> {
        let state = self.state.lock();
        Ok(state
            .unsorted
            .get(&account)
            .and_then(|l| l.iter().find(|u| &u.uid == uid))
            .cloned())
    }

    async fn list_unsorted(&self, account: AccountId) -> StoreResult<Vec<Unsorted>> {
        let mut list = self
            .state
            .lock()
            .unsorted
            .get(&account)
            .cloned()
            .unwrap_or_default();
        list.sort_by(|a, b| (a.created_at, &a.uid).cmp(&(b.created_at, &b.uid)));
        Ok(list)
    }

    async fn remove_unsorted(&self, account: AccountId, uid: &UnsortedUid) -> StoreResult<bool> {
        let mut state = self.state.lock();
        let Some(list) = state.unsorted.get_mut(&account) else {
            return Ok(false);
        };
        let before = list.len();
        list.retain(|u| &u.uid != uid);
        Ok(list.len() != before)
    }

    async fn record_page_view(&self, write: PageViewWrite) -> StoreResult<PageViewOutcome> {
        let mut state = self.state.lock();
        let visitor = state
            .visitors
            .entry((write.account, write.visitor))
            .or_default();
        let last_seen = visitor
            .last_seen
            .insert(write.page_view.site_id, write.page_view.at);
        visitor.page_views.push(write.page_view);
        Ok(PageViewOutcome {
            last_seen,
            history_len: visitor.page_views.len() as u64,
        })
    }

    async fn start_visit(
        &self,
        account: AccountId,
        visitor: VisitorId,
        _retention_secs: u64,
        max_page_views: u64,
    ) -> StoreResult<VisitorState> {
        let mut state = self.state.lock();
        let v = state.visitors.entry((account, visitor)).or_default();
        v.state.visits += 1;
        let excess = v.page_views.len().saturating_sub(max_page_views as usize);
        v.page_views.drain(..excess);
        Ok(v.state)
    }

    async fn link_visitor(
        &self,
        account: AccountId,
        visitor: VisitorId,
        lead: LeadId,
        _at: Millis,
        _retention_secs: u64,
    ) -> StoreResult<Option<LeadId>> {
        let mut state = self.state.lock();
        Ok(state
            .visitors
            .entry((account, visitor))
            .or_default()
            .state
            .lead
            .replace(lead))
    }

    async fn visitor(&self, account: AccountId, visitor: VisitorId) -> StoreResult<VisitorState> {
        Ok(self
            .state
            .lock()
            .visitors
            .get(&(account, visitor))
            .map(|v| v.state)
            .unwrap_or_default())
    }

    async fn page_views(
        &self,
        account: AccountId,
        visitor: VisitorId,
    ) -> StoreResult<Vec<PageView>> {
        Ok(self
            .state
            .lock()
            .visitors
            .get(&(account, visitor))
            .map(|v| v.page_views.clone())
            .unwrap_or_default())
    }

    async fn trim_page_views(
        &self,
        account: AccountId,
        visitor: VisitorId,
        keep: u64,
    ) -> StoreResult<()> {
        if let Some(v) = self.state.lock().visitors.get_mut(&(account, visitor)) {
            let excess = v.page_views.len().saturating_sub(keep as usize);
            v.page_views.drain(..excess);
        }
        Ok(())
    }

    async fn save_event(&self, event: &EventRecord) -> StoreResult<()> {
        let mut state = self.state.lock();
        if !state.events.contains_key(&event.id) {
            state
                .account_events
                .entry(event.account_id)
                .or_default()
                .push(event.id.clone());
        }
        state.events.insert(event.id.clone(), event.clone());
        if event.state.is_pending() {
            let at = event.next_attempt_at.unwrap_or(event.due_at);
            state.schedule_at(&event.id, at);
        } else {
            state.unschedule(&event.id);
        }
        Ok(())
    }

    async fn get_event(&self, id: &EventId) -> StoreResult<Option<EventRecord>> {
        Ok(self.state.lock().events.get(id).cloned())
    }

    async fn claim_due(
        &self,
        now: Millis,
        lease_until: Millis,
        max: usize,
    ) -> StoreResult<Vec<EventRecord>> {
        let mut state = self.state.lock();
        let due: Vec<EventId> = state
            .schedule
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(max)
            .map(|(_, id)| id.clone())
            .collect();
        let mut claimed = Vec::with_capacity(due.len());
        for id in due {
            match state.events.get(&id).cloned() {
                Some(event) => {
                    state.schedule_at(&id, lease_until);
                    claimed.push(event);
                }
                None => state.unschedule(&id),
            }
        }
        Ok(claimed)
    }

    async fn next_due(&self) -> StoreResult<Option<Millis>> {
        Ok(self.state.lock().schedule.first().map(|(at, _)| *at))
    }

    async fn event_ids(&self, account: AccountId) -> StoreResult<Vec<EventId>> {
        let state = self.state.lock();
        let mut ids = state
            .account_events
            .get(&account)
            .cloned()
            .unwrap_or_default();
        ids.reverse();
        Ok(ids)
    }

    async fn dead_event_ids(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<Vec<EventId>> {
        use crate::domain::event_record::DeliveryState;
        let state = self.state.lock();
        Ok(state
            .account_events
            .get(&account)
            .into_iter()
            .flatten()
            .filter(|id| {
                state
                    .events
                    .get(*id)
                    .is_some_and(|e| e.handler_id == handler && e.state == DeliveryState::Dead)
            })
            .cloned()
            .collect())
    }

    async fn note_handler_failure(
        &self,
        account: AccountId,
        handler: HandlerId,
        at: Millis,
    ) -> StoreResult<()> {
        self.state
            .lock()
            .handler_failing
            .entry((account, handler))
            .or_insert(at);
        Ok(())
    }

    async fn note_handler_success(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<()> {
        self.state
            .lock()
            .handler_failing
            .remove(&(account, handler));
        Ok(())
    }

    async fn handler_failing_since(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<Option<Millis>> {
        Ok(self
            .state
            .lock()
            .handler_failing
            .get(&(account, handler))
            .copied())
    }

    async fn remember(&self, key: &str, value: &str, ttl_secs: u64) -> StoreResult<Option<String>> {
        let now = std::time::Instant::now();
        let mut state = self.state.lock();
        state.remembered.retain(|_, (_, expires)| *expires > now);
        if let Some((existing, _)) = state.remembered.get(key) {
            return Ok(Some(existing.clone()));
        }
        let expires = now + std::time::Duration::from_secs(ttl_secs);
        state
            .remembered
            .insert(key.to_owned(), (value.to_owned(), expires));
        Ok(None)
    }

    async fn recall(&self, key: &str) -> StoreResult<Option<String>> {
        let now = std::time::Instant::now();
        let state = self.state.lock();
        Ok(state
            .remembered
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(v, _)| v.clone()))
    }

    async fn settle(&self, key: &str, value: &str) -> StoreResult<()> {
        let now = std::time::Instant::now();
        if let Some((v, expires)) = self.state.lock().remembered.get_mut(key)
            && *expires > now
        {
            *v = value.to_owned();
        }
        Ok(())
    }

    async fn index_contact(&self, account: AccountId, key: &str, lead: LeadId) -> StoreResult<()> {
        self.state
            .lock()
            .contacts
            .insert((account, key.to_owned()), lead);
        Ok(())
    }

    async fn find_contact(&self, account: AccountId, key: &str) -> StoreResult<Option<LeadId>> {
        Ok(self
            .state
            .lock()
            .contacts
            .get(&(account, key.to_owned()))
            .copied())
    }

    async fn publish_live(&self, message: String) -> StoreResult<()> {
        let _ = self.live.send(message);
        Ok(())
    }

    async fn subscribe_live(&self) -> StoreResult<BoxStream<'static, String>> {
        let rx = self.live.subscribe();
        Ok(Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move {
                loop {
                    match rx.recv().await {
                        Ok(message) => return Some((message, rx)),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        )))
    }
}
