//! Enter throughput over HTTP, as a ratio against a baseline measured in
//! the same run: a bare axum endpoint that does nothing but call Velvet's
//! own enter script once per request (new consumer each time) on the same
//! private Redis. Both are separate processes driven the same way, by the
//! loadtest's closed loop (64 keep-alive connections, each request a
//! distinct session), in alternating rounds, so that a noisy machine moves
//! both figures together. `redis-benchmark` running the same script is
//! the third baseline: Redis alone.
//!
//! `cargo bench --bench enter_http`; under `cargo test` it does one tiny
//! round. Figures and how to read them: `benches/README.md`.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{RedisServer, Server, measuring, sessions};
use velvet::loadtest::closed::{ClosedLoop, post_each};
use velvet::loadtest::net::{Http, Sources, Target};

/// Set in the environment of this binary re-run as the bare server.
const BARE_ENV: &str = "VELVET_BENCH_BARE_REDIS";
const ENTER_LUA: &str = include_str!("../src/store/redis/lua/enter.lua");
const WORKERS: usize = 64;

fn main() {
    if let Ok(redis) = std::env::var(BARE_ENV) {
        bare::serve(&redis);
        return;
    }
    let (rounds, per_round, limit) = if measuring() {
        (3, 200_000, Duration::from_secs(6))
    } else {
        (1, 200, Duration::from_secs(5))
    };
    let redis = RedisServer::start();
    let node = Server::node(&redis.url(), &[]);
    let mut helper = Command::new(std::env::current_exe().expect("own path"));
    helper.env(BARE_ENV, redis.url());
    let baseline = Server::spawn(helper);

    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let results = rt.block_on(compare(&node, &baseline, rounds, per_round, limit));
    report(&results);
    if measuring() {
        redis_benchmark(redis.port);
    }
}

struct Round {
    target: &'static str,
    result: ClosedLoop,
}

async fn compare(
    node: &Server,
    baseline: &Server,
    rounds: usize,
    per_round: usize,
    limit: Duration,
) -> Vec<Round> {
    let sources = Arc::new(Sources::loopback(1));
    let mut clients = Vec::new();
    for server in [node, baseline] {
        let target = Target::resolve(&server.url()).await.expect("target");
        clients.push(Arc::new(Http::new(target, sources.clone(), WORKERS)));
    }
    let (velvet, bare) = (clients[0].clone(), clients[1].clone());
    let queue = common::define_queue(&velvet, "bench-enter", 600).await;
    let path = format!("/v1/queues/{queue}/enter");

    let mut out = Vec::new();
    for round in 0..rounds {
        // Alternate who goes first, so neither always meets a warmer cache.
        let order: [(&'static str, &Arc<Http>); 2] = if round % 2 == 0 {
            [("bare", &bare), ("velvet", &velvet)]
        } else {
            [("velvet", &velvet), ("bare", &bare)]
        };
        for (name, http) in order {
            let bearers = Arc::new(sessions(per_round));
            let result = post_each(http.clone(), &path, bearers, WORKERS, limit).await;
            eprintln!(
                "round {round} {name:<6} {:>8.0}/s p99 {:.2} ms",
                result.per_second, result.latency.p99_ms
            );
            out.push(Round {
                target: name,
                result,
            });
        }
    }
    out
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn report(rounds: &[Round]) {
    println!(
        "\n{:<7} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8}  errors",
        "target", "ok", "per s", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for r in rounds {
        let (x, l) = (&r.result, &r.result.latency);
        println!(
            "{:<7} {:>9} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  {:?}",
            r.target,
            x.ok,
            x.per_second,
            l.p50_ms,
            l.p95_ms,
            l.p99_ms,
            l.max_ms,
            x.failed
        );
    }
    let of = |name: &str, f: fn(&ClosedLoop) -> f64| {
        let values = rounds.iter().filter(|r| r.target == name);
        median(values.map(|r| f(&r.result)).collect())
    };
    let (bare, velvet) = (of("bare", |r| r.per_second), of("velvet", |r| r.per_second));
    let (bare_p99, velvet_p99) = (
        of("bare", |r| r.latency.p99_ms),
        of("velvet", |r| r.latency.p99_ms),
    );
    println!(
        "\nmedian of rounds: bare {bare:.0}/s (p99 {bare_p99:.2} ms), velvet \
         {velvet:.0}/s (p99 {velvet_p99:.2} ms): velvet / bare = {:.2}",
        velvet / bare.max(1e-9)
    );
}

/// Velvet's enter script from the C client, 50 connections: the ceiling
/// of this Redis for the script alone.
fn redis_benchmark(port: u16) {
    let port = port.to_string();
    let sha = Command::new("redis-cli")
        .args(["-p", &port, "SCRIPT", "LOAD", ENTER_LUA])
        .output();
    let Ok(sha) = sha else {
        println!("redis-benchmark baseline skipped: no redis-cli");
        return;
    };
    let sha = String::from_utf8_lossy(&sha.stdout).trim().to_owned();
    let now = velvet::domain::clock::now_ms().to_string();
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &port,
            "-q",
            "-c",
            "50",
            "-n",
            "200000",
            "-r",
            "100000000",
        ])
        .args(["EVALSHA", &sha, "4"])
        .args(["velvet:{rb}:line", "velvet:{rb}:entries"])
        .args(["velvet:{rb}:tickets", "velvet:{rb}:stats"])
        .args([
            "00000000-0000-4000-8000-__rand_int__",
            &now,
            "0",
            "-1",
            "0",
            "",
        ])
        .args(["rb:events", "rb", ""])
        .output();
    match out {
        Ok(out) => {
            // Progress lines end in a carriage return; the summary is last.
            let text = String::from_utf8_lossy(&out.stdout);
            let summary = text.trim().rsplit('\r').next().unwrap_or_default();
            let figure = summary.rsplit(" : ").next().unwrap_or(summary);
            println!("redis-benchmark, EVALSHA enter.lua, 50 clients: {figure}");
        }
        Err(e) => println!("redis-benchmark baseline skipped: {e}"),
    }
}

/// The baseline server: one route, one script call, nothing else (no
/// session check, no catalog, no metrics, no layers).
mod bare {
    use axum::Json;
    use axum::extract::State;
    use axum::http::StatusCode;
    use redis::Script;
    use redis::aio::MultiplexedConnection;
    use serde_json::{Value, json};

    #[derive(Clone)]
    struct Bare {
        conn: MultiplexedConnection,
        script: std::sync::Arc<Script>,
    }

    #[tokio::main]
    pub async fn serve(redis: &str) {
        let client = redis::Client::open(redis).expect("redis url");
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the bench's redis-server");
        let state = Bare {
            conn,
            script: std::sync::Arc::new(Script::new(super::ENTER_LUA)),
        };
        let app = axum::Router::new()
            .route("/v1/queues/{id}/enter", axum::routing::post(enter))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("listening on {}", listener.local_addr().expect("bound"));
        axum::serve(listener, app).await.expect("serve");
    }

    /// Same keys, arguments and publish as Velvet's enter of a new consumer.
    async fn enter(State(mut app): State<Bare>) -> Result<Json<Value>, StatusCode> {
        let consumer = uuid::Uuid::new_v4().to_string();
        let mut call = app.script.key("velvet:{bare}:line");
        call.key("velvet:{bare}:entries")
            .key("velvet:{bare}:tickets")
            .key("velvet:{bare}:stats");
        call.arg(consumer).arg(velvet::domain::clock::now_ms());
        call.arg(0)
            .arg(-1)
            .arg(0)
            .arg("")
            .arg("bare:events")
            .arg("bare")
            .arg("");
        let reply: redis::Value = call
            .invoke_async(&mut app.conn)
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        let answered = !matches!(reply, redis::Value::Nil);
        Ok(Json(json!({ "entered": answered })))
    }
}
