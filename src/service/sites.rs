//! A short-lived cache of sites by public key: every page view needs its site, and sites
//! change rarely. Entries live a few seconds, so a site created or changed on another
//! instance is seen soon; this instance drops its own entry when it changes a site.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::domain::ids::SiteKey;
use crate::domain::site::Site;
use crate::store::{Store, StoreResult, catalog};

const FOUND_TTL: Duration = Duration::from_secs(10);
const MISSING_TTL: Duration = Duration::from_secs(2);
/// Above this many entries the cache starts over (unknown keys cannot grow it forever).
const MAX_ENTRIES: usize = 50_000;

/// When an entry was looked up, and what was found.
type Entry = (Instant, Option<Arc<Site>>);

#[derive(Default)]
pub struct SiteCache {
    entries: RwLock<HashMap<SiteKey, Entry>>,
}

impl SiteCache {
    pub async fn by_key(&self, store: &dyn Store, key: &str) -> StoreResult<Option<Arc<Site>>> {
        if let Some((at, site)) = self.entries.read().get(key) {
            let ttl = if site.is_some() {
                FOUND_TTL
            } else {
                MISSING_TTL
            };
            if at.elapsed() < ttl {
                return Ok(site.clone());
            }
        }
        let key = SiteKey(key.to_owned());
        let site = catalog::site_by_key(store, &key).await?.map(Arc::new);
        let mut entries = self.entries.write();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), site.clone()));
        Ok(site)
    }

    pub fn forget(&self, key: &SiteKey) {
        self.entries.write().remove(key);
    }
}
