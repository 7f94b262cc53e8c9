//! What entering a line and admitting a batch cost, on the in-process store
//! and on Redis.
//!
//! Redis is a private `redis-server` that this bench starts on a free loopback
//! port and kills when it ends; the machine's own Redis is never touched.
//! Figures and how to read them: `benches/README.md`. Benchmarks report; no
//! test asserts on time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;

use common::RedisServer;
use criterion::{BenchmarkId, Criterion, Throughput};
use futures_util::StreamExt;
use tokio::runtime::Runtime;
use uuid::Uuid;
use velvet::domain::clock::now_ms;
use velvet::domain::{Grant, Id};
use velvet::store::memory::MemoryStore;
use velvet::store::redis::RedisStore;
use velvet::store::{EnterOutcome, EnterRequest, Limits, Store};

/// Waiting entries kept in the line while `enter` is measured.
const DEPTHS: [u64; 2] = [1_000, 10_000];
/// Enters timed back to back before the untimed leaves that restore depth.
const CHUNK: u64 = 100;
const BATCH: u64 = 1_000;
/// Calls to one store in flight while filling a line (untimed).
const FILL_CONCURRENCY: usize = 64;

/// Consumers never seen before, across every bench and sample of the run.
fn next_consumer() -> Uuid {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    Uuid::from_u128(u128::from(NEXT.fetch_add(1, Ordering::Relaxed)))
}

fn next_seq(what: &str) -> Id {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Id::parse(&format!("bench-{what}-{n}")).expect("a valid id")
}

/// An open queue with no limit: every call creates a waiting entry.
fn request(consumer: Uuid) -> EnterRequest {
    EnterRequest {
        consumer_id: consumer,
        external_id: None,
        now: now_ms(),
        opens_at: 0,
        max_participants: None,
        prequeue_score: 0,
        refuse: None,
    }
}

async fn enter(store: &dyn Store, seq: &Id, consumer: Uuid) {
    match store.enter(seq, request(consumer)).await {
        Ok(EnterOutcome::Entered(_, true)) => {}
        other => panic!("enter did not create an entry: {other:?}"),
    }
}

/// Adds `n` new consumers to the line, several calls in flight (untimed).
async fn fill(store: &dyn Store, seq: &Id, n: u64) -> Vec<Uuid> {
    let consumers: Vec<Uuid> = (0..n).map(|_| next_consumer()).collect();
    futures_util::stream::iter(consumers.iter().copied())
        .map(|c| enter(store, seq, c))
        .buffer_unordered(FILL_CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    consumers
}

/// `iters` enters of new consumers, timed in chunks; each chunk then leaves
/// untimed, so the line keeps the depth it was filled to.
async fn timed_enters(store: &dyn Store, seq: &Id, iters: u64) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let chunk: Vec<Uuid> = (0..left.min(CHUNK)).map(|_| next_consumer()).collect();
        let started = Instant::now();
        for &consumer in &chunk {
            enter(store, seq, consumer).await;
        }
        elapsed += started.elapsed();
        for &consumer in &chunk {
            store.leave(seq, consumer, now_ms()).await.expect("leave");
        }
        left -= chunk.len() as u64;
    }
    elapsed
}

fn bench_enter(c: &mut Criterion, rt: &Runtime, stores: &[(&str, Arc<dyn Store>)]) {
    let mut group = c.benchmark_group("enter");
    group.throughput(Throughput::Elements(1));
    for depth in DEPTHS {
        for (name, store) in stores {
            let seq = next_seq("enter");
            rt.block_on(fill(store.as_ref(), &seq, depth));
            group.bench_function(BenchmarkId::new(*name, depth), |b| {
                b.to_async(rt)
                    .iter_custom(|iters| timed_enters(store.as_ref(), &seq, iters));
            });
        }
    }
    group.finish();
}

/// Grants as the leader would write them; one real-sized token for all,
/// since signing is measured in `benches/tokens.rs`.
fn fake_grants(consumers: &[Uuid]) -> Vec<(Uuid, Grant)> {
    let token = format!("eyJ{}", "x".repeat(420));
    let expires_at = now_ms() + 600_000;
    consumers
        .iter()
        .map(|c| {
            let grant = Grant {
                jti: c.simple().to_string(),
                token: token.clone(),
                expires_at,
            };
            (*c, grant)
        })
        .collect()
}

/// Where a batch runs: a fresh in-process store each time, or the private
/// Redis emptied first, so that past batches neither pile up in memory nor
/// weigh on the next one.
enum Backend {
    Memory,
    Redis(Arc<dyn Store>, redis::Client),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Redis(..) => "redis",
        }
    }

    async fn fresh(&self) -> Arc<dyn Store> {
        match self {
            Backend::Memory => Arc::new(MemoryStore::new()),
            Backend::Redis(store, client) => {
                let mut conn = client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connect");
                let flush = redis::cmd("FLUSHDB");
                flush.query_async::<()>(&mut conn).await.expect("FLUSHDB");
                store.clone()
            }
        }
    }
}

/// One leader tick on a fresh line of `BATCH` waiting: renew the lease,
/// ask who fits, record their grants. The line is filled untimed.
async fn timed_batches(backend: &Backend, iters: u64) -> Duration {
    let limits = Limits {
        want: BATCH,
        per_minute: BATCH,
        max_active: None,
    };
    let mut elapsed = Duration::ZERO;
    for _ in 0..iters {
        let store = backend.fresh().await;
        let seq = next_seq("batch");
        let grants = fake_grants(&fill(store.as_ref(), &seq, BATCH).await);

        let started = Instant::now();
        let lease = store.acquire_lease(seq.as_str(), "bench", 10_000).await;
        let fence = lease.expect("lease call").expect("lease is free");
        let now = now_ms();
        let head = store.admission_room(&seq, now, limits).await.expect("room");
        let recorded = store.admit(&seq, fence, now, &grants).await.expect("admit");
        elapsed += started.elapsed();

        assert_eq!((head.len() as u64, recorded), (BATCH, BATCH));
    }
    elapsed
}

fn bench_batch(c: &mut Criterion, rt: &Runtime, backends: &[Backend]) {
    let mut group = c.benchmark_group("admit_batch");
    group.throughput(Throughput::Elements(BATCH));
    // Each iteration refills 1,000 entries untimed; the fewest samples will do.
    group.sample_size(10);
    for backend in backends {
        group.bench_function(BenchmarkId::new(backend.name(), BATCH), |b| {
            b.to_async(rt)
                .iter_custom(|iters| timed_batches(backend, iters));
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    // One thread: a node's store calls are measured one after another, and
    // the machine has few cores to spare for the server.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = RedisServer::start();
    let redis_store: Arc<dyn Store> = Arc::new(
        rt.block_on(RedisStore::connect(&server.url()))
            .expect("connect to the bench's redis-server"),
    );
    let client = redis::Client::open(server.url()).expect("redis url");
    let stores: Vec<(&str, Arc<dyn Store>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        ("redis", redis_store.clone()),
    ];
    let backends = [Backend::Memory, Backend::Redis(redis_store, client)];

    bench_enter(&mut c, &rt, &stores);
    bench_batch(&mut c, &rt, &backends);

    c.final_summary();
    // Stores first: their connections end before the server does.
    drop((backends, stores));
    drop(server);
}
