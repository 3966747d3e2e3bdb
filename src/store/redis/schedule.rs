//! Events on Redis: each record and its place in the schedule share a shard's slot
//! (`{j<n>}`); the account's event index and dead letters are sorted sets by creation
//! time in the account's slot.

use std::sync::LazyLock;

use ::redis::aio::ConnectionLike;
use ::redis::{FromRedisValue, Script};
use async_trait::async_trait;

use super::slots::Batch;
use super::{RedisStore, lead_scripts, scripts};
use crate::domain::event_record::{DeliveryState, EventRecord};
use crate::domain::ids::{AccountId, EventId, HandlerId};
use crate::domain::time::{Millis, now_ms};
use crate::store::{Schedule, StoreResult, corrupt, from_json, to_json};

/// An event's new state, if its record is still there. KEYS: record, schedule (one
/// slot). ARGV: json, expiry seconds (0: none), schedule score ('': out of the
/// schedule), id. Returns 1 when saved.
static UPDATE_EVENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[2] == '0' then redis.call('SET', KEYS[1], ARGV[1])
else redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
if ARGV[3] == '' then redis.call('ZREM', KEYS[2], ARGV[4])
else redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4]) end
return 1
"#,
    )
});

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// The commands that store an event's state: its record, its place in the schedule,
    /// the account's index and the handler's dead letters. `kept_only`: the record and
    /// its place only if the record is still there, and the index as it is
    /// (`Schedule::update_event`; the dead letters skip ids whose records are gone).
    fn save_commands(
        &self,
        batch: &mut Batch,
        event: &EventRecord,
        kept_only: bool,
    ) -> StoreResult<()> {
        let (record, schedule) = (
            self.keys.event(&event.id),
            self.keys.schedule(self.keys.shard_of(&event.id)),
        );
        let (events, dead) = (
            self.keys.account_events(event.account_id),
            self.keys.dead_events(event.account_id, event.handler_id),
        );
        let id = event.id.as_str();
        let json = to_json(event)?;
        let pending = event.state.is_pending();
        let due = event.next_attempt_at.unwrap_or(event.due_at);
        let mut dead_set = if event.state == DeliveryState::Dead {
            let mut zadd = ::redis::cmd("ZADD");
            zadd.arg(&dead).arg(event.created_at);
            zadd
        } else {
            let mut zrem = ::redis::cmd("ZREM");
            zrem.arg(&dead);
            zrem
        };
        dead_set.arg(id);
        // The record and its place in the schedule share a slot and go first.
        if kept_only {
            batch
                .script(&record, &UPDATE_EVENT, 2)
                .arg(&record)
                .arg(&schedule)
                .arg(json)
                .arg(if pending {
                    0
                } else {
                    self.options.event_retention_secs
                })
                .arg(if pending {
                    due.to_string()
                } else {
                    String::new()
                })
                .arg(id);
        } else {
            let mut set = ::redis::cmd("SET");
            set.arg(&record).arg(json);
            let queue = if pending {
                let mut zadd = ::redis::cmd("ZADD");
                zadd.arg(&schedule).arg(due).arg(id);
                zadd
            } else {
                set.arg("EX").arg(self.options.event_retention_secs);
                let mut zrem = ::redis::cmd("ZREM");
                zrem.arg(&schedule).arg(id);
                zrem
            };
            // A new event enters the account's index; an update's is there already (and
            // an erased one's must not come back).
            let mut index = ::redis::cmd("ZADD");
            index.arg(&events).arg("NX").arg(event.created_at).arg(id);
            batch
                .add(&record, set)
                .add(&schedule, queue)
                .add(&events, index);
        }
        batch.add(&dead, dead_set);
        // An event's end prunes the account's index as its reads do (by creation time),
        // so that an account whose lists nobody reads does not keep every id for ever.
        if !pending {
            let mut prune = ::redis::cmd("ZREMRANGEBYSCORE");
            prune
                .arg(&events)
                .arg("-inf")
                .arg(format!("({}", self.horizon()));
            batch.add(&events, prune);
        }
        Ok(())
    }

    /// The oldest creation time an account's index keeps.
    fn horizon(&self) -> Millis {
        now_ms() - (self.options.event_retention_secs as i64).saturating_mul(1000)
    }

    /// The ids of the account's event index within the retention, dropping older ones;
    /// newest first (by creation time, then id).
    async fn ids_within_retention(&self, key: &str) -> StoreResult<Vec<EventId>> {
        let mut pipe = ::redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(key)
            .arg("-inf")
            .arg(self.horizon())
            .ignore()
            .cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .arg("REV");
        let (ids,): (Vec<String>,) = self.guarded(pipe.query_async(&mut self.con())).await?;
        Ok(ids.into_iter().map(EventId).collect())
    }
}

#[async_trait]
impl<C> Schedule for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn add_events(&self, events: &[EventRecord]) -> StoreResult<()> {
        let mut batch = self.batch();
        for event in events {
            self.save_commands(&mut batch, event, false)?;
            let timeline = self.keys.lead_timeline(event.account_id, event.lead_id);
            batch
                .script(&timeline, &lead_scripts::APPEND_IF_LEAD, 2)
                .arg(self.keys.lead(event.account_id, event.lead_id))
                .arg(&timeline)
                .arg(to_json(&event.fired_entry())?);
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.run_durable(batch).await.map(drop)
    }

    async fn save_event(&self, event: &EventRecord) -> StoreResult<()> {
        let mut batch = self.batch();
        self.save_commands(&mut batch, event, false)?;
        self.run_durable(batch).await.map(drop)
    }

    async fn update_event(&self, event: &EventRecord) -> StoreResult<()> {
        let mut batch = self.batch();
        self.save_commands(&mut batch, event, true)?;
        self.run_durable(batch).await.map(drop)
    }

    async fn get_event(&self, id: &EventId) -> StoreResult<Option<EventRecord>> {
        Ok(self.get_events(std::slice::from_ref(id)).await?.pop())
    }

    async fn get_events(&self, ids: &[EventId]) -> StoreResult<Vec<EventRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = self.batch();
        for id in ids {
            let key = self.keys.event(id);
            let mut get = ::redis::cmd("GET");
            get.arg(&key);
            batch.add(&key, get);
        }
        let mut events = Vec::with_capacity(ids.len());
        for raw in self.run(batch).await? {
            if let Some(json) = Option::<String>::from_redis_value(raw).map_err(corrupt)? {
                events.push(from_json(&json)?);
            }
        }
        Ok(events)
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
        let order: Vec<u32> = (0..shards).map(|i| (first + i) % shards).collect();
        // One round trip for every shard on one server; a cluster's shards are in slots of
        // their own, which one script cannot span.
        let calls: Vec<&[u32]> = if self.by_slot {
            order.chunks(1).collect()
        } else {
            vec![&order]
        };
        let mut claimed = Vec::new();
        for shards in calls {
            if claimed.len() >= max {
                break;
            }
            let mut call = scripts::CLAIM_DUE.prepare_invoke();
            for &shard in shards {
                call.key(self.keys.schedule(shard));
            }
            call.arg(now).arg(lease_until).arg(max - claimed.len());
            for &shard in shards {
                call.arg(self.keys.event_prefix(shard));
            }
            let raw: Vec<String> = self.invoke(&call).await?;
            // One record this build cannot read (written by a newer one during a rolling
            // deploy, say) stays leased and comes back with its lease: it holds up
            // neither the others claimed with it nor the next claims.
            for s in raw {
                match from_json::<EventRecord>(&s) {
                    Ok(event) => claimed.push(event),
                    Err(e) => {
                        tracing::error!(error = %e, "an event record could not be read; left to its lease")
                    }
                }
            }
        }
        Ok(claimed)
    }

    async fn next_due(&self) -> StoreResult<Option<Millis>> {
        let mut batch = self.batch();
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
        self.ids_within_retention(&self.keys.account_events(account))
            .await
    }

    async fn dead_event_ids(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<Vec<EventId>> {
        // Listed while their records are kept (the retention runs from when they died).
        let key = self.keys.dead_events(account, handler);
        let ids: Vec<String> = self
            .query(::redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1))
            .await?;
        let ids: Vec<EventId> = ids.into_iter().map(EventId).collect();
        let kept = self.get_events(&ids).await?;
        let gone: Vec<&EventId> = ids
            .iter()
            .filter(|id| !kept.iter().any(|e| &e.id == *id))
            .collect();
        if !gone.is_empty() {
            let mut zrem = ::redis::cmd("ZREM");
            zrem.arg(&key);
            for id in gone {
                zrem.arg(id.as_str());
            }
            self.query::<()>(&zrem).await?;
        }
        Ok(kept.into_iter().map(|e| e.id).collect())
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
}
