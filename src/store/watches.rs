//! Visits watched for conditional site-visit actions (`domain::conditions`): started when
//! a linked browser's visit begins with such an action not fired yet, read and counted by
//! the page views of the visit in their own round trip (`PageViewWrite::watch`), kept as
//! long as the visit runs (the visit gap after its latest page view).

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::conditions::VisitWatch;
use crate::domain::ids::{ActionId, SiteId};
use crate::domain::time::Millis;
use crate::domain::visitor::VisitorId;

#[async_trait]
pub trait Watches: Send + Sync {
    /// Starts watching the browser's visit on a site (replacing a watch of an earlier
    /// visit), kept `ttl_ms` after its latest page view.
    async fn watch_visit(
        &self,
        visitor: VisitorId,
        site: SiteId,
        watch: &VisitWatch,
        ttl_ms: i64,
    ) -> StoreResult<()>;

    /// Claims that `action` fires in the watched visit that started at `started_at`:
    /// true for exactly one caller, false once claimed or when that visit is not watched.
    async fn claim_in_visit(
        &self,
        visitor: VisitorId,
        site: SiteId,
        started_at: Millis,
        action: ActionId,
    ) -> StoreResult<bool>;
}
