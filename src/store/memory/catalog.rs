//! The catalog in memory: records per account and kind in creation order.

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::ids::AccountId;
use crate::store::{Catalog, RecordKind, Sequence, StoreResult};

#[async_trait]
impl Catalog for MemoryStore {
    async fn next_id(&self, seq: Sequence) -> StoreResult<u64> {
        let mut state = self.state.lock();
        let counter = state.sequences.entry(seq).or_insert(0);
        *counter += 1;
        Ok(seq.base() + *counter)
    }

    async fn next_ids(
        &self,
        account: AccountId,
        seqs: &[Sequence],
    ) -> StoreResult<(Vec<u64>, u64)> {
        let mut ids = Vec::with_capacity(seqs.len());
        for seq in seqs {
            ids.push(self.next_id(*seq).await?);
        }
        Ok((ids, self.catalog_version(account).await?))
    }

    async fn claim_once(&self, key: &str) -> StoreResult<bool> {
        Ok(self.state.lock().once.insert(key.to_owned()))
    }

    async fn put_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
        json: &str,
    ) -> StoreResult<()> {
        let mut state = self.state.lock();
        let records = state.records.entry((account, kind)).or_default();
        match records.iter_mut().find(|(k, _)| k == id) {
            Some(slot) => slot.1 = json.to_owned(),
            None => records.push((id.to_owned(), json.to_owned())),
        }
        *state.catalog_versions.entry(account).or_default() += 1;
        Ok(())
    }

    async fn get_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
    ) -> StoreResult<Option<String>> {
        let state = self.state.lock();
        Ok(state
            .records
            .get(&(account, kind))
            .and_then(|r| r.iter().find(|(k, _)| k == id))
            .map(|(_, v)| v.clone()))
    }

    async fn list_records(&self, account: AccountId, kind: RecordKind) -> StoreResult<Vec<String>> {
        let state = self.state.lock();
        Ok(state
            .records
            .get(&(account, kind))
            .map(|r| r.iter().map(|(_, v)| v.clone()).collect())
            .unwrap_or_default())
    }

    async fn delete_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
    ) -> StoreResult<bool> {
        let mut state = self.state.lock();
        let Some(records) = state.records.get_mut(&(account, kind)) else {
            return Ok(false);
        };
        let before = records.len();
        records.retain(|(k, _)| k != id);
        let deleted = records.len() != before;
        if deleted {
            *state.catalog_versions.entry(account).or_default() += 1;
        }
        Ok(deleted)
    }

    async fn catalog_version(&self, account: AccountId) -> StoreResult<u64> {
        Ok(self
            .state
            .lock()
            .catalog_versions
            .get(&account)
            .copied()
            .unwrap_or(0))
    }

    async fn put_alias(&self, kind: RecordKind, alias: &str, target: &str) -> StoreResult<()> {
        self.state
            .lock()
            .aliases
            .insert((kind, alias.to_owned()), target.to_owned());
        Ok(())
    }

    async fn get_alias(&self, kind: RecordKind, alias: &str) -> StoreResult<Option<String>> {
        Ok(self
            .state
            .lock()
            .aliases
            .get(&(kind, alias.to_owned()))
            .cloned())
    }
}
