//! Commands on keys of different hash slots, sent together: one pipeline on a single
//! Redis server (one round trip), one pipeline per slot on a Redis Cluster — which refuses
//! a pipeline that crosses slots — sent concurrently. Answers come back in command order.

use std::collections::HashMap;

use ::redis::aio::ConnectionLike;
use ::redis::cluster_routing::Slot;
use ::redis::{Cmd, RedisResult, Value};
use futures_util::future::try_join_all;

pub struct Batch {
    /// A cluster: commands are grouped by the slot of their key.
    by_slot: bool,
    commands: Vec<(Option<Slot>, Cmd)>,
}

impl Batch {
    pub fn new(by_slot: bool) -> Self {
        Self {
            by_slot,
            commands: Vec::new(),
        }
    }

    /// Adds a command; `key` (one of its keys) decides its slot on a cluster.
    pub fn add(&mut self, key: &str, cmd: Cmd) -> &mut Self {
        let slot = self.by_slot.then(|| Slot::for_key(key));
        self.commands.push((slot, cmd));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    pub async fn run<C>(self, con: &C) -> RedisResult<Vec<Value>>
    where
        C: ConnectionLike + Clone + Send + Sync,
    {
        if self.commands.is_empty() {
            return Ok(Vec::new());
        }
        if !self.by_slot {
            let mut pipe = ::redis::pipe();
            for (_, cmd) in self.commands {
                pipe.add_command(cmd);
            }
            return pipe.query_async(&mut con.clone()).await;
        }
        let total = self.commands.len();
        let mut groups: HashMap<Option<Slot>, (Vec<usize>, ::redis::Pipeline)> = HashMap::new();
        for (i, (slot, cmd)) in self.commands.into_iter().enumerate() {
            let group = groups
                .entry(slot)
                .or_insert_with(|| (Vec::new(), ::redis::pipe()));
            group.0.push(i);
            group.1.add_command(cmd);
        }
        let answers = try_join_all(groups.into_values().map(|(indices, pipe)| {
            let mut con = con.clone();
            async move {
                let values: Vec<Value> = pipe.query_async(&mut con).await?;
                Ok::<_, ::redis::RedisError>(indices.into_iter().zip(values).collect::<Vec<_>>())
            }
        }))
        .await?;
        let mut ordered = vec![Value::Nil; total];
        for (i, value) in answers.into_iter().flatten() {
            ordered[i] = value;
        }
        Ok(ordered)
    }
}
