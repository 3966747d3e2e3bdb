//! Live updates in memory: one broadcast channel (there is only this instance).

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast::error::RecvError;

use super::MemoryStore;
use crate::store::{Live, StoreResult};

#[async_trait]
impl Live for MemoryStore {
    async fn publish_live(&self, message: String) -> StoreResult<()> {
        let _ = self.live.send(message);
        Ok(())
    }

    async fn subscribe_live(&self) -> StoreResult<BoxStream<'static, String>> {
        let rx = self.live.subscribe();
        Ok(Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move {
                loop {
                    match rx.recv().await {
                        Ok(message) => return Some((message, rx)),
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    }
                }
            },
        )))
    }
}
