//! Managing the catalog through the API: sites, forms, pipelines, handlers and actions.
//! A change is stored with its global name (a site's key, a form's id) and this instance's
//! caches of it dropped, so the public endpoints see it at once here and within seconds
//! on other instances; the triggers' snapshots follow the catalog's version.

use super::{Result, Services};
use crate::domain::ids::AccountId;
use crate::store::catalog::{self, Record};
use crate::store::{RecordKind, Sequence};

impl Services {
    /// The account's records of a kind, in creation order.
    pub async fn records<R: Record>(&self, account: AccountId) -> Result<Vec<R>> {
        Ok(catalog::list(&*self.store, account).await?)
    }

    /// One record of the account, if it exists.
    pub async fn record<R: Record>(
        &self,
        account: AccountId,
        id: impl ToString,
    ) -> Result<Option<R>> {
        Ok(catalog::get(&*self.store, account, id).await?)
    }

    /// Stores a new or changed record.
    pub async fn save<R: Record>(&self, record: &R) -> Result<()> {
        catalog::put(&*self.store, record).await?;
        if let Some(alias) = record.alias() {
            match R::KIND {
                RecordKind::Site => self.sites.forget(&alias),
                RecordKind::Form => self.forms.forget(&alias),
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes a record; false when there was none.
    pub async fn delete_record<R: Record>(
        &self,
        account: AccountId,
        id: impl ToString,
    ) -> Result<bool> {
        Ok(catalog::delete::<R>(&*self.store, account, id).await?)
    }

    /// A new id of a sequence.
    pub async fn next_id(&self, seq: Sequence) -> Result<u64> {
        Ok(self.store.next_id(seq).await?)
    }
}
