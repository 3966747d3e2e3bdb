//! Typed access to the catalog: sites, forms, pipelines, handlers and actions stored as
//! JSON records of their account, plus the global names the public endpoints look them
//! up by (a site's key, a form's id).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{RecordKind, Store, StoreResult, corrupt};
use crate::domain::action::Action;
use crate::domain::form::Form;
use crate::domain::handler::Handler;
use crate::domain::ids::{AccountId, FormId, SiteKey};
use crate::domain::pipeline::Pipeline;
use crate::domain::site::Site;

/// A record of the catalog.
pub trait Record: Serialize + DeserializeOwned + Send + Sync {
    const KIND: RecordKind;
    fn account(&self) -> AccountId;
    fn key(&self) -> String;
}

macro_rules! record {
    ($type:ty, $kind:expr) => {
        impl Record for $type {
            const KIND: RecordKind = $kind;
            fn account(&self) -> AccountId {
                self.account_id
            }
            fn key(&self) -> String {
                self.id.to_string()
            }
        }
    };
}

record!(Site, RecordKind::Site);
record!(Form, RecordKind::Form);
record!(Pipeline, RecordKind::Pipeline);
record!(Handler, RecordKind::Handler);
record!(Action, RecordKind::Action);

pub async fn put<R: Record>(store: &dyn Store, record: &R) -> StoreResult<()> {
    let json = serde_json::to_string(record).map_err(corrupt)?;
    store
        .put_record(record.account(), R::KIND, &record.key(), &json)
        .await
}

pub async fn get<R: Record>(
    store: &dyn Store,
    account: AccountId,
    id: impl ToString,
) -> StoreResult<Option<R>> {
    store
        .get_record(account, R::KIND, &id.to_string())
        .await?
        .map(|json| serde_json::from_str(&json).map_err(corrupt))
        .transpose()
}

pub async fn list<R: Record>(store: &dyn Store, account: AccountId) -> StoreResult<Vec<R>> {
    store
        .list_records(account, R::KIND)
        .await?
        .iter()
        .map(|json| serde_json::from_str(json).map_err(corrupt))
        .collect()
}

pub async fn delete<R: Record>(
    store: &dyn Store,
    account: AccountId,
    id: impl ToString,
) -> StoreResult<bool> {
    store.delete_record(account, R::KIND, &id.to_string()).await
}

/// Stores a site and makes it findable by its public key.
pub async fn put_site(store: &dyn Store, site: &Site) -> StoreResult<()> {
    put(store, site).await?;
    store
        .put_alias(
            RecordKind::Site,
            site.key.as_str(),
            &format!("{}/{}", site.account_id, site.id),
        )
        .await
}

/// Stores a form and makes it findable by its id alone (the submit URL carries no account).
pub async fn put_form(store: &dyn Store, form: &Form) -> StoreResult<()> {
    put(store, form).await?;
    store
        .put_alias(
            RecordKind::Form,
            form.id.as_str(),
            &format!("{}/{}", form.account_id, form.id),
        )
        .await
}

async fn by_alias<R: Record>(store: &dyn Store, alias: &str) -> StoreResult<Option<R>> {
    let Some(target) = store.get_alias(R::KIND, alias).await? else {
        return Ok(None);
    };
    let (account, id) = target
        .split_once('/')
        .ok_or_else(|| corrupt(format!("alias target {target}")))?;
    let account = AccountId(account.parse().map_err(corrupt)?);
    get(store, account, id).await
}

pub async fn site_by_key(store: &dyn Store, key: &SiteKey) -> StoreResult<Option<Site>> {
    by_alias(store, key.as_str()).await
}

pub async fn form_by_id(store: &dyn Store, id: &FormId) -> StoreResult<Option<Form>> {
    by_alias(store, id.as_str()).await
}
