//! The catalog on Redis: an account's records of a kind in one hash with their creation
//! order beside it, and a counter of the catalog's changes, all in the account's slot.

use ::redis::FromRedisValue;
use ::redis::aio::ConnectionLike;
use async_trait::async_trait;

use super::{RedisStore, scripts};
use crate::domain::ids::AccountId;
use crate::store::{Catalog, RecordKind, Sequence, StoreResult, corrupt};

#[async_trait]
impl<C> Catalog for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn next_id(&self, seq: Sequence) -> StoreResult<u64> {
        let n: u64 = self
            .query(::redis::cmd("INCR").arg(self.keys.sequence(seq)))
            .await?;
        Ok(seq.base() + n)
    }

    async fn next_ids(
        &self,
        account: AccountId,
        seqs: &[Sequence],
    ) -> StoreResult<(Vec<u64>, u64)> {
        let mut batch = self.batch();
        let version = self.keys.catalog_version(account);
        let mut get = ::redis::cmd("GET");
        get.arg(&version);
        batch.add(&version, get);
        for seq in seqs {
            let key = self.keys.sequence(*seq);
            let mut incr = ::redis::cmd("INCR");
            incr.arg(&key);
            batch.add(&key, incr);
        }
        let mut replies = self.run(batch).await?.into_iter();
        let version = replies
            .next()
            .map(Option::<u64>::from_redis_value)
            .transpose()
            .map_err(corrupt)?
            .flatten()
            .unwrap_or(0);
        let mut ids = Vec::with_capacity(seqs.len());
        for (seq, n) in seqs.iter().zip(replies) {
            ids.push(seq.base() + u64::from_redis_value(n).map_err(corrupt)?);
        }
        Ok((ids, version))
    }

    async fn claim_once(&self, key: &str) -> StoreResult<bool> {
        let set: Option<String> = self
            .query(
                ::redis::cmd("SET")
                    .arg(self.keys.once(key))
                    .arg(1)
                    .arg("NX"),
            )
            .await?;
        Ok(set.is_some())
    }

    async fn put_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
        json: &str,
    ) -> StoreResult<()> {
        self.invoke::<u64>(
            scripts::PUT_RECORD
                .key(self.keys.records(account, kind))
                .key(self.keys.record_order(account, kind))
                .key(self.keys.catalog_version(account))
                .arg(id)
                .arg(json),
        )
        .await
        .map(drop)
    }

    async fn get_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
    ) -> StoreResult<Option<String>> {
        self.query(
            ::redis::cmd("HGET")
                .arg(self.keys.records(account, kind))
                .arg(id),
        )
        .await
    }

    async fn list_records(&self, account: AccountId, kind: RecordKind) -> StoreResult<Vec<String>> {
        self.invoke(
            scripts::LIST_RECORDS
                .key(self.keys.records(account, kind))
                .key(self.keys.record_order(account, kind)),
        )
        .await
    }

    async fn delete_record(
        &self,
        account: AccountId,
        kind: RecordKind,
        id: &str,
    ) -> StoreResult<bool> {
        let n: u64 = self
            .invoke(
                scripts::DELETE_RECORD
                    .key(self.keys.records(account, kind))
                    .key(self.keys.record_order(account, kind))
                    .key(self.keys.catalog_version(account))
                    .arg(id),
            )
            .await?;
        Ok(n > 0)
    }

    async fn catalog_version(&self, account: AccountId) -> StoreResult<u64> {
        let version: Option<u64> = self
            .query(::redis::cmd("GET").arg(self.keys.catalog_version(account)))
            .await?;
        Ok(version.unwrap_or(0))
    }

    async fn put_alias(&self, kind: RecordKind, alias: &str, target: &str) -> StoreResult<()> {
        self.query::<()>(
            ::redis::cmd("HSET")
                .arg(self.keys.aliases(kind))
                .arg(alias)
                .arg(target),
        )
        .await
    }

    async fn get_alias(&self, kind: RecordKind, alias: &str) -> StoreResult<Option<String>> {
        self.query(::redis::cmd("HGET").arg(self.keys.aliases(kind)).arg(alias))
            .await
    }
}
