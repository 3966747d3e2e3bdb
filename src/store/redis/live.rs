//! Live updates on Redis: pub/sub on one channel, so that a console connected to one
//! instance sees what happens on every instance.

use ::redis::aio::ConnectionLike;
use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::{RedisStore, redis_error};
use crate::store::{Live, StoreResult};

#[async_trait]
impl<C> Live for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn publish_live(&self, message: String) -> StoreResult<()> {
        self.query::<()>(
            ::redis::cmd("PUBLISH")
                .arg(self.keys.live_channel())
                .arg(message),
        )
        .await
    }

    async fn subscribe_live(&self) -> StoreResult<BoxStream<'static, String>> {
        let client = ::redis::Client::open(self.pubsub_url.as_str()).map_err(redis_error)?;
        let mut pubsub = client.get_async_pubsub().await.map_err(redis_error)?;
        pubsub
            .subscribe(self.keys.live_channel())
            .await
            .map_err(redis_error)?;
        Ok(pubsub
            .into_on_message()
            .filter_map(|m| async move { m.get_payload::<String>().ok() })
            .boxed())
    }
}
