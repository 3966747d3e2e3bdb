//! Commands on keys of different hash slots, sent together: one pipeline on a single
//! Redis server (one round trip), one pipeline per slot on a Redis Cluster — which refuses
//! a pipeline that crosses slots — sent concurrently. Answers come back in command order.
//!
//! A script goes in as `EVALSHA`, its hash in place of its text: a server that lacks the
//! script (restarted, or a promoted replica) answers `NOSCRIPT` to that command alone, which
//! therefore did not run; the batch loads the script and sends those commands once more —
//! after the batch's other commands, so a batch must not count on a script call running
//! before a later command of its own (the page-view writer counts the sightings it writes
//! back itself, whichever runs first).
//!
//! A durable batch ends each pipeline with `WAIT 1 <ms>`: on the same connection as the
//! writes before it (a cluster routes the pipeline by its keyed commands), so that it
//! waits for exactly those writes to reach a replica.

use std::collections::HashMap;
use std::ptr;

use ::redis::aio::ConnectionLike;
use ::redis::cluster_routing::Slot;
use ::redis::{Cmd, Pipeline, RedisError, RedisResult, Script, Value};
use futures_util::future::try_join_all;

use super::scripts::Call;

pub struct Batch {
    /// A cluster: commands are grouped by the slot of their key.
    by_slot: bool,
    commands: Vec<Command>,
}

struct Command {
    slot: Option<Slot>,
    cmd: Cmd,
    /// The script an `EVALSHA` calls.
    script: Option<&'static Script>,
}

/// One pipeline's commands, with their places in the batch and the scripts they call.
struct Group {
    slot: Option<Slot>,
    places: Vec<(usize, Option<&'static Script>)>,
    pipe: Pipeline,
}

impl Batch {
    pub fn new(by_slot: bool) -> Self {
        Self {
            by_slot,
            commands: Vec::new(),
        }
    }

    /// Adds a command; `key` (one of its keys) decides its slot on a cluster.
    pub fn add(&mut self, key: impl AsRef<[u8]>, cmd: Cmd) -> &mut Self {
        self.push(key, cmd, None);
        self
    }

    /// Adds a call of `script` with `keys` keys, `key` among them: the command
    /// (`EVALSHA <hash> <keys>`) is returned for its keys, then its arguments.
    pub fn script(
        &mut self,
        key: impl AsRef<[u8]>,
        script: &'static Script,
        keys: usize,
    ) -> &mut Cmd {
        let mut cmd = ::redis::cmd("EVALSHA");
        cmd.arg(script.get_hash()).arg(keys);
        self.push(key, cmd, Some(script))
    }

    /// Adds a script call built as a [`Call`]; its first key decides its slot.
    pub fn call(&mut self, call: &Call<'static>) -> &mut Self {
        let first = call.keys.first().map_or(&[][..], Vec::as_slice);
        let cmd = self.script(first, call.script, call.keys.len());
        for part in call.keys.iter().chain(&call.args) {
            cmd.arg(part.as_slice());
        }
        self
    }

    fn push(
        &mut self,
        key: impl AsRef<[u8]>,
        cmd: Cmd,
        script: Option<&'static Script>,
    ) -> &mut Cmd {
        let slot = self.by_slot.then(|| Slot::for_key(key));
        let at = self.commands.len();
        self.commands.push(Command { slot, cmd, script });
        &mut self.commands[at].cmd
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
    /// without `wait_ms`). A command's error fails the batch (the others ran).
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
        let (by_slot, total) = (self.by_slot, self.commands.len());
        let groups = self.into_groups(wait_ms);
        let (mut values, mut confirmed) = send(&groups, total, con, wait_ms).await?;

        let not_run = not_run(&groups, &values);
        if !not_run.is_empty() {
            let mut again = Batch::new(by_slot);
            let mut places = Vec::with_capacity(not_run.len());
            for (place, script, command) in not_run {
                let loaded = again
                    .commands
                    .iter()
                    .any(|c| c.script.is_some_and(|s| ptr::eq(s, script)));
                if !loaded {
                    script.load_async(&mut con.clone()).await?;
                }
                places.push(place);
                again.commands.push(command);
            }
            // Waited for in vain already, the write is unconfirmed whatever the resend's
            // wait says: it does not wait again (the request's budget is not spent twice).
            let wait_ms = wait_ms.filter(|_| confirmed);
            let groups = again.into_groups(wait_ms);
            let (answers, again_confirmed) = send(&groups, places.len(), con, wait_ms).await?;
            confirmed &= again_confirmed;
            for (place, answer) in places.into_iter().zip(answers) {
                values[place] = answer;
            }
        }
        if let Some(Value::ServerError(e)) =
            values.iter().find(|v| matches!(v, Value::ServerError(_)))
        {
            return Err(RedisError::from(e.clone()));
        }
        Ok((values, confirmed))
    }

    /// The pipelines: one on a single server (every slot is `None`), one per slot on a
    /// cluster; each ends with `WAIT` when asked. Every error comes back in its command's place.
    fn into_groups(self, wait_ms: Option<u64>) -> Vec<Group> {
        let new_group = |slot| Group {
            slot,
            places: Vec::new(),
            pipe: ::redis::pipe(),
        };
        let mut groups: Vec<Group> = Vec::new();
        // Only a cluster needs the map from slot to pipeline.
        let mut by_slot: HashMap<Option<Slot>, usize> = HashMap::new();
        for (place, command) in self.commands.into_iter().enumerate() {
            let at = if self.by_slot {
                *by_slot.entry(command.slot).or_insert_with(|| {
                    groups.push(new_group(command.slot));
                    groups.len() - 1
                })
            } else {
                if groups.is_empty() {
                    groups.push(new_group(None));
                }
                0
            };
            groups[at].places.push((place, command.script));
            groups[at].pipe.add_command(command.cmd);
        }
        for group in &mut groups {
            group.pipe.ignore_errors();
            if let Some(ms) = wait_ms {
                group.pipe.cmd("WAIT").arg(1).arg(ms);
            }
        }
        groups
    }
}

/// Sends the pipelines (concurrently on a cluster) and puts the answers in command order;
/// the `WAIT` answers are taken off and told as whether every pipeline was confirmed.
async fn send<C>(
    groups: &[Group],
    total: usize,
    con: &C,
    wait_ms: Option<u64>,
) -> RedisResult<(Vec<Value>, bool)>
where
    C: ConnectionLike + Clone + Send + Sync,
{
    let answers = try_join_all(groups.iter().map(|group| async move {
        let mut values: Vec<Value> = group.pipe.query_async(&mut con.clone()).await?;
        let confirmed = match wait_ms {
            None => true,
            Some(_) => replicas_confirmed(values.pop()),
        };
        Ok::<_, RedisError>((values, confirmed))
    }))
    .await?;
    let mut ordered = vec![Value::Nil; total];
    let mut all_confirmed = true;
    for (group, (values, confirmed)) in groups.iter().zip(answers) {
        all_confirmed &= confirmed;
        for (&(place, _), value) in group.places.iter().zip(values) {
            ordered[place] = value;
        }
    }
    Ok((ordered, all_confirmed))
}

/// The script calls that a server answered `NOSCRIPT` (it lacked the script, so they did
/// not run), with their places in the batch and their scripts.
fn not_run(groups: &[Group], values: &[Value]) -> Vec<(usize, &'static Script, Command)> {
    let mut out = Vec::new();
    for group in groups {
        for (&(place, script), cmd) in group.places.iter().zip(group.pipe.cmd_iter()) {
            if let Some(script) = script.filter(|_| is_noscript(&values[place])) {
                let (slot, cmd) = (group.slot, cmd.clone());
                out.push((
                    place,
                    script,
                    Command {
                        slot,
                        cmd,
                        script: Some(script),
                    },
                ));
            }
        }
    }
    out
}

fn is_noscript(value: &Value) -> bool {
    matches!(value, Value::ServerError(e) if e.code() == "NOSCRIPT")
}

/// Whether a `WAIT 1` answer counts at least one replica.
fn replicas_confirmed(answer: Option<Value>) -> bool {
    matches!(answer, Some(Value::Int(n)) if n >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the tests' Redis: 127.0.0.1:6379 (`scripts/test.sh` starts one), or
    /// `FOOTFALL_TEST_REDIS_URL`.
    async fn connection() -> ::redis::aio::MultiplexedConnection {
        let url = std::env::var("FOOTFALL_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let client = ::redis::Client::open(url).unwrap();
        client.get_multiplexed_async_connection().await.unwrap()
    }

    /// A script no server has seen yet (its text carries a fresh nonce): its first
    /// `EVALSHA` is answered `NOSCRIPT`.
    fn unseen_script(body: &str) -> &'static Script {
        let nonce = uuid::Uuid::new_v4();
        Box::leak(Box::new(Script::new(&format!("-- {nonce}\n{body}"))))
    }

    #[tokio::test]
    async fn a_script_the_server_lacks_is_loaded_and_each_call_runs_once() {
        let con = connection().await;
        let prefix = format!("ff-test:{}", uuid::Uuid::new_v4());
        let (plain, counted) = (format!("{prefix}:plain"), format!("{prefix}:counted"));
        let incr = unseen_script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
        let mut batch = Batch::new(false);
        batch.add(&plain, ::redis::cmd("INCR").arg(&plain).clone());
        batch.script(&counted, incr, 1).arg(&counted).arg(10);
        batch.script(&counted, incr, 1).arg(&counted).arg(5);
        batch.add(&plain, ::redis::cmd("INCR").arg(&plain).clone());

        let (values, confirmed) = batch.run_waiting(&con, None).await.unwrap();

        assert_eq!(
            values,
            [Value::Int(1), Value::Int(10), Value::Int(15), Value::Int(2)]
        );
        assert!(confirmed);
        let mut check = con.clone();
        let totals: (i64, i64) = ::redis::pipe()
            .get(&plain)
            .get(&counted)
            .del(&[&plain, &counted])
            .ignore()
            .query_async(&mut check)
            .await
            .unwrap();
        assert_eq!(totals, (2, 15), "every command ran once");
    }

    #[tokio::test]
    async fn a_script_error_fails_the_batch() {
        let con = connection().await;
        let failing = unseen_script("return redis.error_reply('ERR refused by the script')");
        let mut batch = Batch::new(false);
        batch.script("ff-test:any", failing, 0);
        let err = batch.run(&con).await.unwrap_err();
        assert!(err.to_string().contains("refused by the script"), "{err}");
    }

    #[tokio::test]
    async fn a_waiting_batch_answers_its_commands_and_whether_a_replica_confirmed() {
        let con = connection().await;
        let replicas = super::super::durable::has_replicas(&con).await.unwrap();
        let key = format!("ff-test:{}", uuid::Uuid::new_v4());
        let set = unseen_script("return redis.call('SET', KEYS[1], ARGV[1], 'PX', 5000)");
        let mut batch = Batch::new(false);
        batch.script(&key, set, 1).arg(&key).arg("v");
        let (values, confirmed) = batch.run_waiting(&con, Some(10)).await.unwrap();
        assert_eq!(values, [Value::Okay], "the WAIT's answer is taken off");
        assert_eq!(confirmed, replicas);
    }
}
