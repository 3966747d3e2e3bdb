//! This instance's copies of the catalog, so that the hot paths read no metadata from the
//! store:
//!
//! - [`Snapshot`]s of an account's sites, pipelines, handlers and actions, good while the store's
//!   catalog version has not moved (the start of a visit reads the version in the same
//!   round trip as the browser's lead, so a change on any instance is seen at once);
//! - [`KeyCache`]s of sites by public key and forms by id, for the public endpoints:
//!   entries live a few seconds, so a change on another instance is seen soon, and this
//!   instance drops its own entry when it changes one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::domain::action::Action;
use crate::domain::form::Form;
use crate::domain::handler::Handler;
use crate::domain::ids::{AccountId, FormId, HandlerId, PipelineId, SiteKey};
use crate::domain::pipeline::Pipeline;
use crate::domain::site::Site;
use crate::store::catalog::{self, Record};
use crate::store::{Catalog, StoreResult};

/// An account's sites, pipelines, handlers and actions at one catalog version.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub version: u64,
    pub sites: Vec<Site>,
    pub pipelines: Vec<Pipeline>,
    pub handlers: Vec<Handler>,
    pub actions: Vec<Action>,
    /// The account's webhooks (`/api/v4/webhooks`), by `sort` then id.
    pub webhooks: Vec<crate::domain::account_webhook::AccountWebhook>,
}

impl Snapshot {
    pub fn site(&self, id: crate::domain::ids::SiteId) -> Option<&Site> {
        self.sites.iter().find(|s| s.id == id)
    }

    pub fn pipeline(&self, id: PipelineId) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.id == id)
    }

    pub fn handler(&self, id: HandlerId) -> Option<&Handler> {
        self.handlers.iter().find(|h| h.id == id)
    }
}

/// Clones share the snapshots (a background load fills the same cache).
#[derive(Default, Clone)]
pub struct Snapshots {
    accounts: Arc<RwLock<HashMap<AccountId, Arc<Snapshot>>>>,
}

impl Snapshots {
    /// The account's latest snapshot this instance holds, of whatever version.
    pub fn cached(&self, account: AccountId) -> Option<Arc<Snapshot>> {
        self.accounts.read().get(&account).cloned()
    }

    /// The account's snapshot at `version` (read from the store when not given).
    pub async fn get(
        &self,
        store: &dyn Catalog,
        account: AccountId,
        version: Option<u64>,
    ) -> StoreResult<Arc<Snapshot>> {
        let version = match version {
            Some(v) => v,
            None => store.catalog_version(account).await?,
        };
        if let Some(s) = self.accounts.read().get(&account)
            && s.version == version
        {
            return Ok(s.clone());
        }
        let snapshot = Arc::new(Snapshot {
            version,
            sites: catalog::list(store, account).await?,
            pipelines: catalog::list(store, account).await?,
            handlers: catalog::list(store, account).await?,
            actions: catalog::list(store, account).await?,
            webhooks: catalog::list(store, account).await?,
        });
        // A change while reading makes the version move again: the next read reloads. A
        // slower read of an older version does not replace a newer one.
        let mut accounts = self.accounts.write();
        match accounts.get(&account) {
            Some(newer) if newer.version > version => Ok(newer.clone()),
            _ => {
                accounts.insert(account, snapshot.clone());
                Ok(snapshot)
            }
        }
    }
}

const FOUND_TTL: Duration = Duration::from_secs(10);
const MISSING_TTL: Duration = Duration::from_secs(2);
/// Above this many entries a cache starts over (unknown keys cannot grow it forever).
const MAX_ENTRIES: usize = 50_000;

/// When an entry was looked up, and what was found.
type Entry<R> = (Instant, Option<Arc<R>>);

/// Records by the global name the public endpoints know them by.
pub struct KeyCache<R> {
    entries: RwLock<HashMap<String, Entry<R>>>,
}

impl<R> Default for KeyCache<R> {
    fn default() -> Self {
        Self {
            entries: RwLock::default(),
        }
    }
}

impl<R: Record> KeyCache<R> {
    async fn get_or_load<F>(&self, key: &str, load: F) -> StoreResult<Option<Arc<R>>>
    where
        F: AsyncFnOnce() -> StoreResult<Option<R>>,
    {
        if let Some((at, found)) = self.entries.read().get(key) {
            let ttl = if found.is_some() {
                FOUND_TTL
            } else {
                MISSING_TTL
            };
            if at.elapsed() < ttl {
                return Ok(found.clone());
            }
        }
        let found = load().await?.map(Arc::new);
        let mut entries = self.entries.write();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_owned(), (Instant::now(), found.clone()));
        Ok(found)
    }

    pub fn forget(&self, key: &str) {
        self.entries.write().remove(key);
    }

    /// The record under `key` if this instance has looked it up and found it, however
    /// long ago: no round trip, whatever the answer.
    pub fn cached(&self, key: &str) -> Option<Arc<R>> {
        self.entries
            .read()
            .get(key)
            .and_then(|(_, found)| found.clone())
    }
}

impl KeyCache<Site> {
    pub async fn by_key(&self, store: &dyn Catalog, key: &str) -> StoreResult<Option<Arc<Site>>> {
        self.get_or_load(key, async || {
            catalog::site_by_key(store, &SiteKey(key.to_owned())).await
        })
        .await
    }
}

impl KeyCache<Form> {
    pub async fn by_id(&self, store: &dyn Catalog, id: &FormId) -> StoreResult<Option<Arc<Form>>> {
        self.get_or_load(id.as_str(), async || catalog::form_by_id(store, id).await)
            .await
    }
}
