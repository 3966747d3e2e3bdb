//! Typed access to the catalog: sites, forms, pipelines, handlers and actions stored as
//! JSON records of their account, plus the global names the public endpoints look them
//! up by (a site's key, a form's id).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Catalog, RecordKind, StoreResult, corrupt, to_json};
use crate::domain::account_webhook::AccountWebhook;
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
    /// The global name the public endpoints find it by, if it has one.
    fn alias(&self) -> Option<String> {
        None
    }
}

macro_rules! record {
    ($type:ty, $kind:expr $(, alias $alias:ident)?) => {
        impl Record for $type {
            const KIND: RecordKind = $kind;
            fn account(&self) -> AccountId {
                self.account_id
            }
            fn key(&self) -> String {
                self.id.to_string()
            }
            $(
                fn alias(&self) -> Option<String> {
                    Some(self.$alias.as_str().to_owned())
                }
            )?
        }
    };
}

record!(Site, RecordKind::Site, alias key);
record!(Form, RecordKind::Form, alias id);
record!(Pipeline, RecordKind::Pipeline);
record!(Handler, RecordKind::Handler);
record!(Action, RecordKind::Action);
record!(AccountWebhook, RecordKind::Webhook);

/// Stores a record, and makes it findable by its global name when it has one (a site by
/// its key, a form by its id: the public endpoints' URLs carry no account).
pub async fn put<R: Record>(store: &dyn Catalog, record: &R) -> StoreResult<()> {
    let json = to_json(record)?;
    store
        .put_record(record.account(), R::KIND, &record.key(), &json)
        .await?;
    if let Some(alias) = record.alias() {
        let target = format!("{}/{}", record.account(), record.key());
        store.put_alias(R::KIND, &alias, &target).await?;
    }
    Ok(())
}

pub async fn get<R: Record>(
    store: &dyn Catalog,
    account: AccountId,
    id: impl ToString,
) -> StoreResult<Option<R>> {
    store
        .get_record(account, R::KIND, &id.to_string())
        .await?
        .map(|json| serde_json::from_str(&json).map_err(corrupt))
        .transpose()
}

pub async fn list<R: Record>(store: &dyn Catalog, account: AccountId) -> StoreResult<Vec<R>> {
    store
        .list_records(account, R::KIND)
        .await?
        .iter()
        .map(|json| serde_json::from_str(json).map_err(corrupt))
        .collect()
}

pub async fn delete<R: Record>(
    store: &dyn Catalog,
    account: AccountId,
    id: impl ToString,
) -> StoreResult<bool> {
    store.delete_record(account, R::KIND, &id.to_string()).await
}

async fn by_alias<R: Record>(store: &dyn Catalog, alias: &str) -> StoreResult<Option<R>> {
    let Some(target) = store.get_alias(R::KIND, alias).await? else {
        return Ok(None);
    };
    let (account, id) = target
        .split_once('/')
        .ok_or_else(|| corrupt(format!("alias target {target}")))?;
    let account = AccountId(account.parse().map_err(corrupt)?);
    get(store, account, id).await
}

pub async fn site_by_key(store: &dyn Catalog, key: &SiteKey) -> StoreResult<Option<Site>> {
    by_alias(store, key.as_str()).await
}

pub async fn form_by_id(store: &dyn Catalog, id: &FormId) -> StoreResult<Option<Form>> {
    by_alias(store, id.as_str()).await
}
