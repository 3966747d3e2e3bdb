//! The Redis store (production). All state lives in Redis; keys carry hash tags so that
//! Redis Cluster works (`keys.rs`); atomic steps are small Lua scripts (`scripts.rs`);
//! page views are group-committed (`batch.rs`).
//!
//! Generic over the connection: a `ConnectionManager` (one server, reconnects by itself)
//! or a cluster connection (issue: scale out) — both implement `ConnectionLike`.

mod batch;
mod breaker;
mod keys;
mod scripts;
mod slots;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use std::future::Future;

use ::redis::{FromRedisValue, RedisError, RedisResult, ScriptInvocation};
use async_trait::async_trait;

pub use keys::Keys;

use self::batch::{Connect, PageViewBatcher};
use self::breaker::Breaker;
use self::slots::Batch;
use super::*;
use crate::domain::event_record::DeliveryState;
use crate::domain::ids::{ContactId, PipelineId, StatusId};
use crate::domain::lead::Contact;

/// How the Redis store is laid out and how long it keeps finished events.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub key_prefix: String,
    /// Shards of the delivery schedule: each is one key (one slot of a cluster).
    pub schedule_shards: u32,
    /// Delivered, dead and cancelled events are kept this long.
    pub event_retention_secs: u64,
    /// A command that gets no answer in this time fails (the request answers 503).
    pub response_timeout: Duration,
}

pub struct RedisStore<C> {
    con: C,
    keys: Keys,
    options: RedisOptions,
    description: String,
    page_views: PageViewBatcher<C>,
    /// A node to subscribe to live updates on (in a cluster, PUBLISH reaches every node).
    pubsub_url: String,
    /// A cluster: commands of different slots go in separate pipelines.
    by_slot: bool,
    breaker: Arc<Breaker>,
}

pub(crate) fn unavailable(message: &str) -> StoreError {
    StoreError::Unavailable(message.to_owned())
}

fn redis_error(e: RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A URL without its password, for logs.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "redis (unparsable URL)".to_owned(),
    }
}

impl RedisStore<ConnectionManager> {
    /// Connects to one Redis server; the connection reconnects by itself afterwards.
    pub async fn connect(url: &str, options: RedisOptions) -> StoreResult<Self> {
        let client = ::redis::Client::open(url).map_err(redis_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let con = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(redis_error)?;
        let connect: Connect<ConnectionManager> = Arc::new(move || {
            let (client, config) = (client.clone(), config.clone());
            Box::pin(async move { ConnectionManager::new_with_config(client, config).await })
        });
        Ok(Self::with_connection(
            con,
            connect,
            redact(url),
            url,
            false,
            options,
        ))
    }
}

impl RedisStore<::redis::cluster_async::ClusterConnection> {
    /// Connects to a Redis Cluster through any of its nodes.
    pub async fn connect_cluster(urls: &[String], options: RedisOptions) -> StoreResult<Self> {
        let client = ::redis::cluster::ClusterClientBuilder::new(urls.to_vec())
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(options.response_timeout)
            .retries(2)
            .build()
            .map_err(redis_error)?;
        let con = client.get_async_connection().await.map_err(redis_error)?;
        let connect: Connect<::redis::cluster_async::ClusterConnection> = Arc::new(move || {
            let client = client.clone();
            Box::pin(async move { client.get_async_connection().await })
        });
        let description = format!(
            "redis cluster ({})",
            urls.iter()
                .map(|u| redact(u))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let pubsub_url = urls.first().cloned().unwrap_or_default();
        Ok(Self::with_connection(
            con,
            connect,
            description,
            &pubsub_url,
            true,
            options,
        ))
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn with_connection(
        con: C,
        connect: Connect<C>,
        description: String,
        pubsub_url: &str,
        by_slot: bool,
        options: RedisOptions,
    ) -> Self {
        let keys = Keys::new(&options.key_prefix, options.schedule_shards);
        let breaker = Arc::new(Breaker::default());
        let page_views = PageViewBatcher::new(connect, keys.clone(), by_slot, breaker.clone());
        Self {
            con,
            keys,
            options,
            description,
            page_views,
            pubsub_url: pubsub_url.to_owned(),
            by_slot,
            breaker,
        }
    }

    /// Every command goes through the breaker: refused at once while Redis is down.
    async fn guarded<T>(&self, command: impl Future<Output = RedisResult<T>>) -> StoreResult<T> {
        self.breaker.admit()?;
        let result = command.await;
        self.breaker.record(&result);
        result.map_err(redis_error)
    }

    async fn invoke<T: FromRedisValue>(&self, script: &ScriptInvocation<'_>) -> StoreResult<T> {
        self.guarded(script.invoke_async(&mut self.con())).await
    }

    async fn run(&self, batch: Batch) -> StoreResult<Vec<::redis::Value>> {
        self.guarded(batch.run(&self.con)).await
    }

    fn con(&self) -> C {
        self.con.clone()
    }

    async fn query<T: FromRedisValue>(&self, cmd: &::redis::Cmd) -> StoreResult<T> {
        self.guarded(cmd.query_async(&mut self.con())).await
    }

    async fn query_pipe<T: FromRedisValue>(&self, pipe: &::redis::Pipeline) -> StoreResult<T> {
        self.guarded(pipe.query_async(&mut self.con())).await
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(corrupt)
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A lead as the fields of its hash. Every value is short (contacts are flat fields, not
/// one JSON value), so that Redis keeps the hash in its compact listpack encoding — the
/// visitor links added to it later stay small too.
fn lead_fields(lead: &Lead) -> Vec<(String, String)> {
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

fn lead_from_fields(id: LeadId, mut f: HashMap<String, String>) -> StoreResult<Option<Lead>> {
    if !f.contains_key("a") {
        return Ok(None);
    }
    let mut take = |k: &str| {
        f.remove(k)
            .ok_or_else(|| corrupt(format!("lead {id} lacks {k}")))
    };
    let num = |s: String| s.parse::<i64>().map_err(corrupt);
    let mut lead = Lead {
        id,
        account_id: AccountId(num(take("a")?)? as u64),
        name: take("n")?,
        pipeline_id: PipelineId(num(take("p")?)? as u64),
        status_id: StatusId(num(take("s")?)? as u64),
        created_at: num(take("c")?)?,
        updated_at: num(take("u")?)?,
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

fn stage_of(p: &str, s: &str) -> StoreResult<Stage> {
    Ok(Stage {
        pipeline_id: PipelineId(p.parse().map_err(corrupt)?),
        status_id: StatusId(s.parse().map_err(corrupt)?),
    })
}

/// The first character of the meta element at the tail of a visitor's history.
const META: char = '~';

/// A visitor's meta as the history scripts answer it: `{visits, lead or ""}`.
fn visitor_state((visits, lead): (u32, String)) -> VisitorState {
    VisitorState {
        visits,
        lead: lead.parse().ok().map(LeadId),
    }
}

/// A lead's visitor link, as the field `v:<visitor>` of the lead's hash:
/// `linked_at|since|until` (empty when absent).
fn encode_link(link: &VisitorLink) -> String {
    let opt = |v: Option<Millis>| v.map(|v| v.to_string()).unwrap_or_default();
    format!("{}|{}|{}", link.linked_at, opt(link.since), opt(link.until))
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

#[async_trait]
impl<C> Store for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn describe(&self) -> String {
        self.description.clone()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.query::<String>(&::redis::cmd("PING")).await.map(drop)
    }

    async fn next_id(&self, seq: Sequence) -> StoreResult<u64> {
        let n: u64 = self
            .query(::redis::cmd("INCR").arg(self.keys.sequence(seq)))
            .await?;
        Ok(seq.base() + n)
    }

    async fn claim_once(&self, key: &str) -> StoreResult<bool> {
        let set: Option<String> = self
            .query(
                ::redis::cmd("SET")
                    .arg(self.keys.once(key))
                    .arg(1)
                    .arg("NX"),
            )
            .await?;
        Ok(set.is_some())
    }

    async fn put_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
        json: &str,
    ) -> StoreResult<()> {
        self.query::<()>(
            ::redis::cmd("HSET")
                .arg(self.keys.records(account, kind))
                .arg(id)
                .arg(json),
        )
        .await
    }

    async fn get_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
    ) -> StoreResult<Option<String>> {
        self.query(
            ::redis::cmd("HGET")
                .arg(self.keys.records(account, kind))
                .arg(id),
        )
        .await
    }

    async fn list_records(&self, account: AccountId, kind: RecordKind) -> StoreResult<Vec<String>> {
        let all: Vec<(String, String)> = self
            .query(::redis::cmd("HGETALL").arg(self.keys.records(account, kind)))
            .await?;
        let mut all: Vec<(u64, String, String)> = all
            .into_iter()
            .map(|(k, v)| (k.parse().unwrap_or(u64::MAX), k, v))
            .collect();
        // Numeric ids in creation order; string ids after them, by name.
        all.sort();
        Ok(all.into_iter().map(|(_, _, v)| v).collect())
    }

    async fn delete_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
    ) -> StoreResult<bool> {
        let n: u64 = self
            .query(
                ::redis::cmd("HDEL")
                    .arg(self.keys.records(account, kind))
                    .arg(id),
            )
            .await?;
        Ok(n > 0)
    }

    async fn put_alias(&self, kind: RecordKind, alias: &str, target: &str) -> StoreResult<()> {
        self.query::<()>(
            ::redis::cmd("HSET")
                .arg(self.keys.aliases(kind))
                .arg(alias)
                .arg(target),
        )
        .await
    }

    async fn get_alias(&self, kind: RecordKind, alias: &str) -> StoreResult<Option<String>> {
        self.query(::redis::cmd("HGET").arg(self.keys.aliases(kind)).arg(alias))
            .await
    }

    async fn insert_lead(&self, lead: &Lead, first: &TimelineEntry) -> StoreResult<()> {
        let (lead_key, timeline, index) = (
            self.keys.lead(lead.id),
            self.keys.lead_timeline(lead.id),
            self.keys.account_leads(lead.account_id),
        );
        let mut batch = Batch::new(self.by_slot);
        let mut hset = ::redis::cmd("HSET");
        hset.arg(&lead_key).arg(lead_fields(lead));
        let mut rpush = ::redis::cmd("RPUSH");
        rpush.arg(&timeline).arg(to_json(first));
        let mut zadd = ::redis::cmd("ZADD");
        zadd.arg(&index).arg(lead.id.0).arg(lead.id.0);
        batch
            .add(&lead_key, hset)
            .add(&timeline, rpush)
            .add(&index, zadd);
        self.run(batch).await.map(drop)
    }

    async fn get_leads(&self, ids: &[LeadId]) -> StoreResult<Vec<Lead>> {
        let mut batch = Batch::new(self.by_slot);
        for id in ids {
            let key = self.keys.lead(*id);
            let mut cmd = ::redis::cmd("HGETALL");
            cmd.arg(&key);
            batch.add(&key, cmd);
        }
        let rows = self.run(batch).await?;
        let mut leads = Vec::with_capacity(ids.len());
        for (id, row) in ids.iter().zip(rows) {
            let fields = HashMap::<String, String>::from_redis_value(row).map_err(corrupt)?;
            if let Some(lead) = lead_from_fields(*id, fields)? {
                leads.push(lead);
            }
        }
        Ok(leads)
    }

    async fn lead_ids(&self, account: AccountId) -> StoreResult<Vec<LeadId>> {
        let ids: Vec<u64> = self
            .query(
                ::redis::cmd("ZRANGE")
                    .arg(self.keys.account_leads(account))
                    .arg(0)
                    .arg(-1)
                    .arg("REV"),
            )
            .await?;
        Ok(ids.into_iter().map(LeadId).collect())
    }

    async fn move_lead(
        &self,
        id: LeadId,
        to: Stage,
        at: Millis,
        expect: Option<Stage>,
    ) -> StoreResult<MoveOutcome> {
        let (ep, es) = expect
            .map(|s| (s.pipeline_id.to_string(), s.status_id.to_string()))
            .unwrap_or_default();
        let reply: Option<(String, String, String)> = self
            .invoke(
                scripts::MOVE_LEAD
                    .key(self.keys.lead(id))
                    .arg(to.pipeline_id.0)
                    .arg(to.status_id.0)
                    .arg(at)
                    .arg(ep)
                    .arg(es),
            )
            .await?;
        Ok(match reply {
            None => MoveOutcome::NotFound,
            Some((outcome, p, s)) => {
                let stage = stage_of(&p, &s)?;
                if outcome == "moved" {
                    MoveOutcome::Moved { from: stage }
                } else {
                    MoveOutcome::Conflict { current: stage }
                }
            }
        })
    }

    async fn rename_lead(&self, id: LeadId, name: &str, at: Millis) -> StoreResult<bool> {
        let n: i64 = self
            .invoke(
                scripts::RENAME_LEAD
                    .key(self.keys.lead(id))
                    .arg(name)
                    .arg(at),
            )
            .await?;
        Ok(n == 1)
    }

    async fn append_timeline(&self, lead: LeadId, entry: &TimelineEntry) -> StoreResult<()> {
        self.query::<()>(
            ::redis::cmd("RPUSH")
                .arg(self.keys.lead_timeline(lead))
                .arg(to_json(entry)),
        )
        .await
    }

    async fn timeline(&self, lead: LeadId) -> StoreResult<Vec<TimelineEntry>> {
        let raw: Vec<String> = self
            .query(
                ::redis::cmd("LRANGE")
                    .arg(self.keys.lead_timeline(lead))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        raw.iter().map(|s| parse_json(s)).collect()
    }

    async fn put_lead_visitor(&self, lead: LeadId, link: &VisitorLink) -> StoreResult<()> {
        self.query::<()>(
            ::redis::cmd("HSET")
                .arg(self.keys.lead(lead))
                .arg(format!("v:{}", link.visitor))
                .arg(encode_link(link)),
        )
        .await
    }

    async fn lead_visitors(&self, lead: LeadId) -> StoreResult<Vec<VisitorLink>> {
        let fields: HashMap<String, String> = self
            .query(::redis::cmd("HGETALL").arg(self.keys.lead(lead)))
            .await?;
        let mut links = fields
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("v:")?, v)))
            .map(|(visitor, v)| decode_link(visitor, v))
            .collect::<StoreResult<Vec<_>>>()?;
        links.sort_by_key(|l| (l.linked_at, l.visitor));
        Ok(links)
    }

    async fn put_unsorted(&self, entry: &Unsorted) -> StoreResult<()> {
        self.query::<()>(
            ::redis::cmd("HSET")
                .arg(self.keys.unsorted(entry.account_id))
                .arg(entry.uid.as_str())
                .arg(to_json(entry)),
        )
        .await
    }

    async fn get_unsorted(
        &self,
        account: AccountId,
        uid: &UnsortedUid,
    ) -> StoreResult<Option<Unsorted>> {
        let raw: Option<String> = self
            .query(
                ::redis::cmd("HGET")
                    .arg(self.keys.unsorted(account))
                    .arg(uid.as_str()),
            )
            .await?;
        raw.map(|s| parse_json(&s)).transpose()
    }

    async fn list_unsorted(&self, account: AccountId) -> StoreResult<Vec<Unsorted>> {
        let raw: Vec<String> = self
            .query(::redis::cmd("HVALS").arg(self.keys.unsorted(account)))
            .await?;
        let mut list: Vec<Unsorted> = raw
            .iter()
            .map(|s| parse_json(s))
            .collect::<StoreResult<_>>()?;
        list.sort_by(|a, b| (a.created_at, &a.uid).cmp(&(b.created_at, &b.uid)));
        Ok(list)
    }

    async fn remove_unsorted(&self, account: AccountId, uid: &UnsortedUid) -> StoreResult<bool> {
        let n: u64 = self
            .query(
                ::redis::cmd("HDEL")
                    .arg(self.keys.unsorted(account))
                    .arg(uid.as_str()),
            )
            .await?;
        Ok(n > 0)
    }

    async fn record_page_view(&self, write: PageViewWrite) -> StoreResult<PageViewOutcome> {
        self.page_views.record(write).await
    }

    async fn start_visit(
        &self,
        account: AccountId,
        visitor: VisitorId,
        retention_secs: u64,
        max_page_views: u64,
    ) -> StoreResult<VisitorState> {
        let state = self
            .invoke(
                scripts::START_VISIT
                    .key(self.keys.visitor_history(account, visitor))
                    .arg(retention_secs)
                    .arg(max_page_views.max(1)),
            )
            .await?;
        Ok(visitor_state(state))
    }

    async fn link_visitor(
        &self,
        account: AccountId,
        visitor: VisitorId,
        lead: LeadId,
        at: Millis,
        retention_secs: u64,
    ) -> StoreResult<Option<LeadId>> {
        let previous: String = self
            .invoke(
                scripts::LINK_VISITOR
                    .key(self.keys.visitor_history(account, visitor))
                    .arg(lead.0)
                    .arg(at)
                    .arg(retention_secs),
            )
            .await?;
        Ok(previous.parse().ok().map(LeadId))
    }

    async fn visitor(&self, account: AccountId, visitor: VisitorId) -> StoreResult<VisitorState> {
        let state = self
            .invoke(&scripts::READ_VISITOR.key(self.keys.visitor_history(account, visitor)))
            .await?;
        Ok(visitor_state(state))
    }

    async fn page_views(
        &self,
        account: AccountId,
        visitor: VisitorId,
    ) -> StoreResult<Vec<PageView>> {
        let raw: Vec<String> = self
            .query(
                ::redis::cmd("LRANGE")
                    .arg(self.keys.visitor_history(account, visitor))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        // Oldest first already (the sort only checks), unless the history predates that
        // order and no script has put it in order yet.
        let mut views = raw
            .iter()
            .filter(|s| !s.starts_with(META))
            .map(|s| PageView::decode(s).ok_or_else(|| corrupt("page view")))
            .collect::<StoreResult<Vec<_>>>()?;
        views.sort_by_key(|v| v.at);
        Ok(views)
    }

    async fn trim_page_views(
        &self,
        account: AccountId,
        visitor: VisitorId,
        keep: u64,
    ) -> StoreResult<()> {
        self.invoke(
            scripts::TRIM_HISTORY
                .key(self.keys.visitor_history(account, visitor))
                .arg(keep.max(1)),
        )
        .await
    }

    async fn save_event(&self, event: &EventRecord) -> StoreResult<()> {
        let (record, schedule) = (
            self.keys.event(&event.id),
            self.keys.schedule(self.keys.shard_of(&event.id)),
        );
        let (events, dead) = (
            self.keys.account_events(event.account_id),
            self.keys.dead_events(event.account_id, event.handler_id),
        );
        let id = event.id.as_str();
        let mut set = ::redis::cmd("SET");
        set.arg(&record).arg(to_json(event));
        let queue = if event.state.is_pending() {
            let mut zadd = ::redis::cmd("ZADD");
            zadd.arg(&schedule)
                .arg(event.next_attempt_at.unwrap_or(event.due_at))
                .arg(id);
            zadd
        } else {
            set.arg("EX").arg(self.options.event_retention_secs);
            let mut zrem = ::redis::cmd("ZREM");
            zrem.arg(&schedule).arg(id);
            zrem
        };
        let mut index = ::redis::cmd("ZADD");
        index.arg(&events).arg("NX").arg(event.created_at).arg(id);
        let mut dead_set = ::redis::cmd(if event.state == DeliveryState::Dead {
            "SADD"
        } else {
            "SREM"
        });
        dead_set.arg(&dead).arg(id);
        // The record and its place in the schedule share a slot and go first.
        let mut batch = Batch::new(self.by_slot);
        batch
            .add(&record, set)
            .add(&schedule, queue)
            .add(&events, index)
            .add(&dead, dead_set);
        self.run(batch).await.map(drop)
    }

    async fn get_event(&self, id: &EventId) -> StoreResult<Option<EventRecord>> {
        let raw: Option<String> = self
            .query(::redis::cmd("GET").arg(self.keys.event(id)))
            .await?;
        raw.map(|s| parse_json(&s)).transpose()
    }

    async fn claim_due(
        &self,
        now: Millis,
        lease_until: Millis,
        max: usize,
    ) -> StoreResult<Vec<EventRecord>> {
        let shards = self.keys.shards();
        // Start at a different shard each time so that no shard waits behind the others.
        let first = rand::random_range(0..shards);
        let mut claimed = Vec::new();
        for i in 0..shards {
            if claimed.len() >= max {
                break;
            }
            let shard = (first + i) % shards;
            let raw: Vec<String> = self
                .invoke(
                    scripts::CLAIM_DUE
                        .key(self.keys.schedule(shard))
                        .arg(now)
                        .arg(lease_until)
                        .arg(max - claimed.len())
                        .arg(self.keys.event_prefix(shard)),
                )
                .await?;
            for s in raw {
                claimed.push(parse_json::<EventRecord>(&s)?);
            }
        }
        Ok(claimed)
    }

    async fn next_due(&self) -> StoreResult<Option<Millis>> {
        let mut batch = Batch::new(self.by_slot);
        for shard in 0..self.keys.shards() {
            let key = self.keys.schedule(shard);
            let mut cmd = ::redis::cmd("ZRANGE");
            cmd.arg(&key).arg(0).arg(0).arg("WITHSCORES");
            batch.add(&key, cmd);
        }
        let mut earliest = None;
        for first in self.run(batch).await? {
            let first = Vec::<(String, f64)>::from_redis_value(first).map_err(corrupt)?;
            if let Some((_, score)) = first.first() {
                let at = *score as Millis;
                earliest = Some(earliest.map_or(at, |e: Millis| e.min(at)));
            }
        }
        Ok(earliest)
    }

    async fn event_ids(&self, account: AccountId) -> StoreResult<Vec<EventId>> {
        let key = self.keys.account_events(account);
        let horizon = crate::domain::time::now_ms()
            - (self.options.event_retention_secs as i64).saturating_mul(1000);
        let mut pipe = ::redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(horizon)
            .ignore()
            .cmd("ZRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .arg("REV");
        let (ids,): (Vec<String>,) = self.query_pipe(&pipe).await?;
        Ok(ids.into_iter().map(EventId).collect())
    }

    async fn dead_event_ids(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<Vec<EventId>> {
        let mut ids: Vec<String> = self
            .query(::redis::cmd("SMEMBERS").arg(self.keys.dead_events(account, handler)))
            .await?;
        ids.sort();
        Ok(ids.into_iter().map(EventId).collect())
    }

    async fn note_handler_failure(
        &self,
        account: AccountId,
        handler: HandlerId,
        at: Millis,
    ) -> StoreResult<()> {
        self.query::<()>(
            ::redis::cmd("HSETNX")
                .arg(self.keys.handler_failures(account))
                .arg(handler.0)
                .arg(at),
        )
        .await
    }

    async fn note_handler_success(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<()> {
        self.query::<()>(
            ::redis::cmd("HDEL")
                .arg(self.keys.handler_failures(account))
                .arg(handler.0),
        )
        .await
    }

    async fn handler_failing_since(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<Option<Millis>> {
        self.query(
            ::redis::cmd("HGET")
                .arg(self.keys.handler_failures(account))
                .arg(handler.0),
        )
        .await
    }

    async fn remember(&self, key: &str, value: &str, ttl_secs: u64) -> StoreResult<Option<String>> {
        self.query(
            ::redis::cmd("SET")
                .arg(self.keys.remembered(key))
                .arg(value)
                .arg("NX")
                .arg("GET")
                .arg("EX")
                .arg(ttl_secs.max(1)),
        )
        .await
    }

    async fn recall(&self, key: &str) -> StoreResult<Option<String>> {
        self.query(::redis::cmd("GET").arg(self.keys.remembered(key)))
            .await
    }

    async fn settle(&self, key: &str, value: &str) -> StoreResult<()> {
        self.query::<()>(
            ::redis::cmd("SET")
                .arg(self.keys.remembered(key))
                .arg(value)
                .arg("XX")
                .arg("KEEPTTL"),
        )
        .await
    }

    async fn index_contact(&self, account: AccountId, key: &str, lead: LeadId) -> StoreResult<()> {
        self.query::<()>(
            ::redis::cmd("HSET")
                .arg(self.keys.contacts(account))
                .arg(key)
                .arg(lead.0),
        )
        .await
    }

    async fn find_contact(&self, account: AccountId, key: &str) -> StoreResult<Option<LeadId>> {
        let lead: Option<u64> = self
            .query(
                ::redis::cmd("HGET")
                    .arg(self.keys.contacts(account))
                    .arg(key),
            )
            .await?;
        Ok(lead.map(LeadId))
    }

    async fn publish_live(&self, message: String) -> StoreResult<()> {
        self.query::<()>(
            ::redis::cmd("PUBLISH")
                .arg(self.keys.live_channel())
                .arg(message),
        )
        .await
    }

    async fn subscribe_live(
        &self,
    ) -> StoreResult<futures_util::stream::BoxStream<'static, String>> {
        use futures_util::StreamExt;
        let client = ::redis::Client::open(self.pubsub_url.as_str()).map_err(redis_error)?;
        let mut pubsub = client.get_async_pubsub().await.map_err(redis_error)?;
        pubsub
            .subscribe(self.keys.live_channel())
            .await
            .map_err(redis_error)?;
        Ok(pubsub
            .into_on_message()
            .filter_map(|m| async move { m.get_payload::<String>().ok() })
            .boxed())
    }
}
