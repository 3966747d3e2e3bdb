//! Watched visits on Redis: one hash per browser and site in the browser's slot, beside
//! its sighting — `m` the visit (JSON), `s` its start, `n` its page views so far, and a
//! field `f<action>` per conditional action fired in it. A page view of an account with
//! conditional actions reads and counts it inside the page-view writer's pipeline
//! ([`add_read`]), so a watched visit costs no extra round trip per page view.

use std::sync::LazyLock;

use ::redis::aio::ConnectionLike;
use ::redis::{FromRedisValue, Script, Value};
use async_trait::async_trait;

use super::RedisStore;
use super::keys::Keys;
use super::slots::Batch;
use crate::domain::conditions::VisitWatch;
use crate::domain::ids::{ActionId, SiteId};
use crate::domain::time::Millis;
use crate::domain::visitor::VisitorId;
use crate::store::{PageViewWrite, StoreResult, Watches, corrupt, from_json, to_json};

/// Counts a page view in the visit's watch and returns it, or false when the visit is
/// not watched. KEYS: watch. ARGV: ttl ms. Sent in the page-view pipeline.
static READ_WATCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return false end \
    redis.call('HINCRBY', KEYS[1], 'n', 1) redis.call('PEXPIRE', KEYS[1], ARGV[1]) \
    return redis.call('HGETALL', KEYS[1])",
    )
});

/// Replaces the watch. KEYS: watch. ARGV: ttl ms, visit JSON, start, pages, then the
/// fired actions' fields.
static WATCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'm', ARGV[2], 's', ARGV[3], 'n', ARGV[4])
for i = 5, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"#,
    )
});

/// Claims an action in the watched visit. KEYS: watch. ARGV: start, action field.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], 's') ~= ARGV[1] then return 0 end
return redis.call('HSETNX', KEYS[1], ARGV[2], 1)
"#,
    )
});

fn fired_field(action: ActionId) -> String {
    format!("f{action}")
}

/// Adds the page-view writer's command for a page view that asks for its visit's watch.
pub(super) fn add_read(commands: &mut Batch, keys: &Keys, write: &PageViewWrite) {
    let key = keys.visitor_watch(write.visitor, write.page_view.site_id);
    commands
        .script(&key, &READ_WATCH, 1)
        .arg(&key)
        .arg(write.visit_idle_ms.max(1));
}

/// The watch from the reply to [`add_read`]'s command.
pub(super) fn watch_from_reply(reply: Option<Value>) -> StoreResult<Option<VisitWatch>> {
    let reply = reply.ok_or_else(|| corrupt("short pipeline reply"))?;
    let Some(fields) = Option::<Vec<String>>::from_redis_value(reply).map_err(corrupt)? else {
        return Ok(None);
    };
    let mut watch: Option<VisitWatch> = None;
    let mut pages = 0;
    let mut fired = Vec::new();
    for pair in fields.chunks_exact(2) {
        let (name, value) = (pair[0].as_str(), pair[1].as_str());
        match name {
            "m" => watch = Some(from_json(value)?),
            "n" => pages = value.parse().map_err(corrupt)?,
            _ => {
                if let Some(id) = name.strip_prefix('f') {
                    fired.push(ActionId(id.parse().map_err(corrupt)?));
                }
            }
        }
    }
    let mut watch = watch.ok_or_else(|| corrupt("a visit watch without its visit"))?;
    watch.pages = pages;
    fired.sort();
    watch.fired = fired;
    Ok(Some(watch))
}

#[async_trait]
impl<C> Watches for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn watch_visit(
        &self,
        visitor: VisitorId,
        site: SiteId,
        watch: &VisitWatch,
        ttl_ms: i64,
    ) -> StoreResult<()> {
        let visit = VisitWatch {
            pages: 0,
            fired: Vec::new(),
            ..watch.clone()
        };
        let mut call = WATCH.key(self.keys.visitor_watch(visitor, site));
        call.arg(ttl_ms.max(1))
            .arg(to_json(&visit)?)
            .arg(watch.started_at)
            .arg(watch.pages);
        for action in &watch.fired {
            call.arg(fired_field(*action));
        }
        self.invoke::<i64>(&call).await.map(|_| ())
    }

    async fn claim_in_visit(
        &self,
        visitor: VisitorId,
        site: SiteId,
        started_at: Millis,
        action: ActionId,
    ) -> StoreResult<bool> {
        let claimed: i64 = self
            .invoke(
                CLAIM
                    .key(self.keys.visitor_watch(visitor, site))
                    .arg(started_at)
                    .arg(fired_field(action)),
            )
            .await?;
        Ok(claimed == 1)
    }
}

/// A page view's outcome with its visit's watch read from `reply`.
pub(super) fn with_watch(
    outcome: StoreResult<crate::store::PageViewOutcome>,
    reply: Option<Value>,
) -> StoreResult<crate::store::PageViewOutcome> {
    let watch = watch_from_reply(reply);
    let mut outcome = outcome?;
    outcome.watch = watch?;
    Ok(outcome)
}
