//! Issue 4's benchmark: Redis commands per admission tick per node, with
//! few and with many connected WebSocket consumers, to show that pushing
//! positions costs Redis nothing per consumer.
//!
//! Three `velvet` nodes share one private `redis-server`. Consumers enter
//! (spread over the nodes) and each holds a WebSocket on one node, read
//! by its own task. Once all are connected and the line has settled,
//! `CONFIG RESETSTAT`, a window of admission ticks (one batch a second),
//! then `INFO commandstats`: every command Redis ran in the window, those
//! inside scripts included. Each size gets fresh processes, so nothing
//! carries over.
//!
//! `cargo bench --bench commands` runs 100 and 10,000 consumers with a
//! 10 s window; under `cargo test` it runs 6 and 30 with a 2 s window.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{RedisServer, Server, measuring, sessions};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use velvet::loadtest::closed::post_each;
use velvet::loadtest::net::{Http, Sources, Target, websocket};

const NODES: usize = 3;
/// The node's default tick; 60 a minute admits one consumer per tick.
const TICK: Duration = Duration::from_secs(1);

struct Measured {
    consumers: usize,
    ticks: f64,
    calls: BTreeMap<String, u64>,
    /// Messages the sockets received during the window.
    pushed: u64,
}

impl Measured {
    fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    fn per_tick_per_node(&self) -> f64 {
        self.total() as f64 / self.ticks / NODES as f64
    }
}

fn main() {
    let (sizes, window) = if measuring() {
        (vec![100, 10_000], Duration::from_secs(10))
    } else {
        (vec![6, 30], Duration::from_secs(2))
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let results: Vec<Measured> = sizes
        .into_iter()
        .map(|n| rt.block_on(measure(n, window)))
        .collect();
    report(&results);
}

async fn measure(consumers: usize, window: Duration) -> Measured {
    let redis = RedisServer::start();
    let nodes: Vec<Server> = (0..NODES)
        .map(|_| Server::node(&redis.url(), &[]))
        .collect();
    let sources = Arc::new(Sources::loopback(1));
    let mut https = Vec::new();
    for node in &nodes {
        let target = Target::resolve(&node.url()).await.expect("target");
        https.push((
            target.clone(),
            Arc::new(Http::new(target, sources.clone(), 16)),
        ));
    }
    let queue = common::define_queue(&https[0].1, "bench-commands", 60).await;

    // Everyone enters, a third on each node, and connects to the next one.
    let tokens = sessions(consumers);
    let path = format!("/v1/queues/{queue}/enter");
    for (i, (_, http)) in https.iter().enumerate() {
        let mine: Vec<String> = tokens.iter().skip(i).step_by(NODES).cloned().collect();
        let entered =
            post_each(http.clone(), &path, Arc::new(mine), 16, window * 6).await;
        assert!(
            entered.failed.is_empty(),
            "enters failed: {:?}",
            entered.failed
        );
    }
    let pushed = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let connected = futures_util::stream::iter(tokens.iter().enumerate())
        .map(|(i, token)| {
            let target = https[(i + 1) % NODES].0.clone();
            hold(
                target,
                sources.clone(),
                token.clone(),
                pushed.clone(),
                stopped.clone(),
            )
        })
        .buffer_unordered(128)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    assert_eq!(connected, consumers, "every socket came up");

    // Let sync reads and the first batches pass, then count a window.
    tokio::time::sleep(2 * TICK).await;
    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let reset: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .expect("CONFIG RESETSTAT");
    let pushed_before = pushed.load(Ordering::Relaxed);
    tokio::time::sleep(window).await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("INFO commandstats");
    let _ = (reset, stop.send(true));
    Measured {
        consumers,
        ticks: window.as_secs_f64() / TICK.as_secs_f64(),
        calls: command_calls(&info),
        pushed: pushed.load(Ordering::Relaxed) - pushed_before,
    }
}

/// One consumer's socket: authenticates, then counts what it is sent
/// until the bench stops. False if it never came up.
async fn hold(
    target: Target,
    sources: Arc<Sources>,
    token: String,
    pushed: Arc<AtomicU64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> bool {
    let Ok(mut socket) = websocket(&target, &sources, "/v1/ws").await else {
        return false;
    };
    let auth = serde_json::json!({ "type": "auth", "sessionToken": token });
    if socket
        .send(Message::Text(auth.to_string().into()))
        .await
        .is_err()
    {
        return false;
    }
    match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.contains("\"ready\"") => {}
        _ => return false,
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                frame = socket.next() => match frame {
                    Some(Ok(Message::Text(_))) => {
                        pushed.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                },
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    });
    true
}

/// `cmdstat_NAME:calls=N,…` lines into NAME → N.
fn command_calls(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.strip_prefix("calls=")?.split(',').next()?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        // The bench's own two commands.
        .filter(|(name, _)| !name.starts_with("info") && !name.starts_with("config"))
        .collect()
}

fn report(results: &[Measured]) {
    println!(
        "\n{:>9} {:>7} {:>12} {:>16} {:>14}",
        "consumers", "ticks", "commands", "per tick/node", "pushed msgs"
    );
    for m in results {
        println!(
            "{:>9} {:>7.0} {:>12} {:>16.1} {:>14}",
            m.consumers,
            m.ticks,
            m.total(),
            m.per_tick_per_node(),
            m.pushed
        );
    }
    for m in results {
        let calls: Vec<String> =
            m.calls.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("{} consumers: {}", m.consumers, calls.join(" "));
    }
    if let [few, many] = results {
        println!(
            "\n{}× the consumers: {:.2}× the commands per tick per node",
            many.consumers / few.consumers.max(1),
            many.per_tick_per_node() / few.per_tick_per_node().max(1e-9)
        );
    }
}
