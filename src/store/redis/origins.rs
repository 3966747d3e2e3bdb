//! The origins of sites (`https://shop.example`), which page views on them are stored
//! relative to (`page_view_codec.rs`). A site's URL never changes and a site is never
//! deleted, so an origin once read is kept for the life of the process, shared by the
//! store and its page-view writers.
//!
//! A writer that does not know a site's origin yet stores the page view whole and reads
//! the origin in a task of its own: the beacon never waits for it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ::redis::RedisResult;
use ::redis::aio::ConnectionLike;
use parking_lot::{Mutex, RwLock};

use super::RedisStore;
use super::keys::Keys;
use super::page_view_codec::{self, Stored};
use crate::domain::ids::{AccountId, SiteId};
use crate::domain::site::{Site, parse_web_url};
use crate::domain::tracking::PageView;
use crate::store::{RecordKind, StoreResult, corrupt};

type SiteKey = (AccountId, SiteId);

#[derive(Default)]
pub struct SiteOrigins {
    known: RwLock<HashMap<SiteKey, Arc<str>>>,
    /// Sites whose origin a writer is reading now.
    asked: Mutex<HashSet<SiteKey>>,
}

impl SiteOrigins {
    pub fn get(&self, account: AccountId, site: SiteId) -> Option<Arc<str>> {
        self.known.read().get(&(account, site)).cloned()
    }

    /// The origin of a page view's site for its writer: when not known, the first writer
    /// to ask reads it in the background (a site not found is asked again later).
    pub fn for_write<C>(
        self: &Arc<Self>,
        con: &C,
        keys: &Keys,
        account: AccountId,
        site: SiteId,
    ) -> Option<Arc<str>>
    where
        C: ConnectionLike + Clone + Send + Sync + 'static,
    {
        if let Some(origin) = self.get(account, site) {
            return Some(origin);
        }
        if self.asked.lock().insert((account, site)) {
            let (this, mut con, keys) = (self.clone(), con.clone(), keys.clone());
            tokio::spawn(async move {
                if let Ok(records) = read(&mut con, &keys, account, &[site]).await {
                    this.learn(account, &[site], records);
                }
                this.asked.lock().remove(&(account, site));
            });
        }
        None
    }

    /// Keeps the origins of the sites whose records were found.
    fn learn(&self, account: AccountId, sites: &[SiteId], records: Vec<Option<String>>) {
        let mut known = self.known.write();
        for (site, json) in sites.iter().zip(records) {
            if let Some(origin) = json.as_deref().and_then(origin_of) {
                known.insert((account, *site), origin.into());
            }
        }
    }
}

/// A site's origin from its catalog record.
fn origin_of(json: &str) -> Option<String> {
    let site: Site = serde_json::from_str(json).ok()?;
    Some(parse_web_url(&site.url)?.origin().ascii_serialization())
}

/// The catalog records of an account's sites (none for a site not found).
async fn read<C: ConnectionLike>(
    con: &mut C,
    keys: &Keys,
    account: AccountId,
    sites: &[SiteId],
) -> RedisResult<Vec<Option<String>>> {
    let mut get = ::redis::cmd("HMGET");
    get.arg(keys.records(account, RecordKind::Site));
    for site in sites {
        get.arg(site.0);
    }
    get.query_async(con).await
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Stored page views, each made whole with its site's origin.
    pub(super) async fn decode_page_views(
        &self,
        account: AccountId,
        raw: impl Iterator<Item = String>,
    ) -> StoreResult<Vec<PageView>> {
        let stored = raw
            .map(|s| page_view_codec::decode(&s).ok_or_else(|| corrupt("page view")))
            .collect::<StoreResult<Vec<Stored>>>()?;
        let mut missing: Vec<SiteId> = stored
            .iter()
            .filter(|s| matches!(s, Stored::Relative(_)))
            .map(Stored::site_id)
            .filter(|site| self.origins.get(account, *site).is_none())
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let records = self
                .guarded(read(&mut self.con(), &self.keys, account, &missing))
                .await?;
            self.origins.learn(account, &missing, records);
        }
        stored
            .into_iter()
            .map(|s| {
                let origin = self.origins.get(account, s.site_id());
                s.resolve(origin.as_deref())
                    .ok_or_else(|| corrupt("a page view of a site that is gone"))
            })
            .collect()
    }
}
