//! Browsers on Redis: page views through the group-committing writer; the start of a
//! visit as one batch that counts the visit (the browser's slot) and reads the browser's
//! lead with the catalog version (the account's slot).

use ::redis::FromRedisValue;
use ::redis::aio::ConnectionLike;
use async_trait::async_trait;

use super::leads::lead_from_reply;
use super::{RedisStore, lead_scripts, scripts};
use crate::domain::ids::{AccountId, LeadId};
use crate::domain::lead::Lead;
use crate::domain::tracking::PageView;
use crate::domain::visitor::VisitorId;
use crate::store::{
    PageViewOutcome, PageViewWrite, StoreResult, VisitStart, VisitorState, Visitors, corrupt,
};

/// The first character of the meta element at the head of a browser's history.
const META: char = '~';

#[async_trait]
impl<C> Visitors for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn record_page_view(&self, write: PageViewWrite) -> StoreResult<PageViewOutcome> {
        self.page_views.record(write).await
    }

    async fn start_visit(
        &self,
        account: AccountId,
        visitor: VisitorId,
        retention_secs: u64,
        anonymous_secs: u64,
        max_page_views: u64,
    ) -> StoreResult<VisitStart> {
        let history = self.keys.visitor_history(account, visitor);
        let browser = self.keys.browser(account, visitor);
        let mut batch = self.batch();
        batch
            .script(&history, &scripts::START_VISIT, 1)
            .arg(&history)
            .arg(retention_secs)
            .arg(max_page_views.max(1))
            .arg(anonymous_secs.max(1));
        batch
            .script(&browser, &lead_scripts::LEAD_OF_BROWSER, 2)
            .arg(&browser)
            .arg(self.keys.catalog_version(account))
            .arg(self.keys.lead_prefix(account))
            .arg(retention_secs.max(1));
        let mut replies = self.run(batch).await?.into_iter();
        let (Some(number), Some(lead)) = (replies.next(), replies.next()) else {
            return Err(corrupt("short reply to a visit's start"));
        };
        let number = u32::from_redis_value(number).map_err(corrupt)?;
        let (catalog_version, lead) = browser_lead_from_reply(lead)?;
        Ok(VisitStart {
            number,
            lead,
            catalog_version,
        })
    }

    async fn browser_lead(
        &self,
        account: AccountId,
        visitor: VisitorId,
        retention_secs: u64,
    ) -> StoreResult<Option<Lead>> {
        let reply: ::redis::Value = self
            .invoke(
                lead_scripts::LEAD_OF_BROWSER
                    .key(self.keys.browser(account, visitor))
                    .key(self.keys.catalog_version(account))
                    .arg(self.keys.lead_prefix(account))
                    .arg(retention_secs.max(1)),
            )
            .await?;
        Ok(browser_lead_from_reply(reply)?.1)
    }

    async fn visitor(&self, account: AccountId, visitor: VisitorId) -> StoreResult<VisitorState> {
        let history = self.keys.visitor_history(account, visitor);
        let browser = self.keys.browser(account, visitor);
        let mut batch = self.batch();
        batch
            .script(&history, &scripts::READ_VISITS, 1)
            .arg(&history);
        let mut lead = ::redis::cmd("GET");
        lead.arg(&browser);
        batch.add(&browser, lead);
        let replies = self.run(batch).await?;
        let [visits, lead] = <[::redis::Value; 2]>::try_from(replies)
            .map_err(|_| corrupt("short reply to a browser's state"))?;
        Ok(VisitorState {
            visits: u32::from_redis_value(visits).map_err(corrupt)?,
            lead: Option::<u64>::from_redis_value(lead)
                .map_err(corrupt)?
                .map(LeadId),
        })
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
        let page_views = raw.into_iter().filter(|s| !s.starts_with(META));
        self.decode_page_views(account, page_views).await
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
}

/// `LEAD_OF_BROWSER`'s answer: the catalog version, and the browser's lead.
fn browser_lead_from_reply(reply: ::redis::Value) -> StoreResult<(u64, Option<Lead>)> {
    let mut reply = Vec::<::redis::Value>::from_redis_value(reply)
        .map_err(corrupt)?
        .into_iter();
    let (Some(version), Some(id)) = (reply.next(), reply.next()) else {
        return Err(corrupt("short reply to a browser's lead"));
    };
    let catalog_version = String::from_redis_value(version)
        .map_err(corrupt)?
        .parse()
        .map_err(corrupt)?;
    let id = String::from_redis_value(id).map_err(corrupt)?;
    Ok((catalog_version, lead_from_reply(&id, reply.collect())?))
}
