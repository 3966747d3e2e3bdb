//! Live updates on Redis: pub/sub on one channel, so that a console connected to one
//! instance sees what happens on every instance. Subscribed on the first node that answers
//! (any node of a cluster hears every PUBLISH), or on the primary Sentinel names now — so
//! that subscribing again after a failover finds a living server.

use ::redis::aio::ConnectionLike;
use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::{PubSub, RedisStore, redis_error};
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
        let mut pubsub = match &self.pubsub {
            PubSub::Sentinel(locator) => {
                let (_, client) = locator.primary().await.map_err(redis_error)?;
                client.get_async_pubsub().await.map_err(redis_error)?
            }
            PubSub::Nodes(urls) => {
                let mut last = None;
                let mut found = None;
                for url in urls {
                    let opened = match ::redis::Client::open(url.as_str()) {
                        Ok(client) => client.get_async_pubsub().await,
                        Err(e) => Err(e),
                    };
                    match opened {
                        Ok(pubsub) => {
                            found = Some(pubsub);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                match (found, last) {
                    (Some(pubsub), _) => pubsub,
                    (None, Some(e)) => return Err(redis_error(e)),
                    (None, None) => {
                        return Err(super::unavailable("no Redis node to subscribe on"));
                    }
                }
            }
        };
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
