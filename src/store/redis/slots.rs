//! Commands on keys of different hash slots, sent together: one pipeline on a single
//! Redis server (one round trip), one pipeline per slot on a Redis Cluster — which refuses
//! a pipeline that crosses slots — sent concurrently. Answers come back in command order.
//!
//! A durable batch ends each pipeline with `WAIT 1 <ms>`: on the same connection as the
//! writes before it (a cluster routes the pipeline by its keyed commands), so that it
//! waits for exactly those writes to reach a replica.

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

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub async fn run<C>(self, con: &C) -> RedisResult<Vec<Value>>
    where
        C: ConnectionLike + Clone + Send + Sync,
    {
        Ok(self.run_waiting(con, None).await?.0)
    }

    /// Runs the batch; with `wait_ms`, each pipeline then waits up to that long for one
    /// replica. Also tells whether every pipeline's writes reached a replica (always true
    /// without `wait_ms`).
    pub async fn run_waiting<C>(
        self,
        con: &C,
        wait_ms: Option<u64>,
    ) -> RedisResult<(Vec<Value>, bool)>
    where
        C: ConnectionLike + Clone + Send + Sync,
    {
        if self.commands.is_empty() {
            return Ok((Vec::new(), true));
        }
        if !self.by_slot {
            let mut pipe = ::redis::pipe();
            for (_, cmd) in self.commands {
                pipe.add_command(cmd);
            }
            return query_waiting(pipe, con, wait_ms).await;
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
        let answers = try_join_all(groups.into_values().map(|(indices, pipe)| async move {
            let (values, confirmed) = query_waiting(pipe, con, wait_ms).await?;
            Ok::<_, ::redis::RedisError>((
                indices.into_iter().zip(values).collect::<Vec<_>>(),
                confirmed,
            ))
        }))
        .await?;
        let mut ordered = vec![Value::Nil; total];
        let mut all_confirmed = true;
        for (values, confirmed) in answers {
            all_confirmed &= confirmed;
            for (i, value) in values {
                ordered[i] = value;
            }
        }
        Ok((ordered, all_confirmed))
    }
}

/// One pipeline, ended with `WAIT 1 <wait_ms>` when asked; the WAIT's answer is taken off.
async fn query_waiting<C>(
    mut pipe: ::redis::Pipeline,
    con: &C,
    wait_ms: Option<u64>,
) -> RedisResult<(Vec<Value>, bool)>
where
    C: ConnectionLike + Clone + Send + Sync,
{
    if let Some(ms) = wait_ms {
        pipe.cmd("WAIT").arg(1).arg(ms);
    }
    let mut values: Vec<Value> = pipe.query_async(&mut con.clone()).await?;
    let confirmed = match wait_ms {
        None => true,
        Some(_) => replicas_confirmed(values.pop()),
    };
    Ok((values, confirmed))
}

/// Whether a `WAIT 1` answer counts at least one replica.
pub fn replicas_confirmed(answer: Option<Value>) -> bool {
    matches!(answer, Some(Value::Int(n)) if n >= 1)
}
