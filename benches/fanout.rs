//! What one admission batch costs a node's hub: `Hub::on_event` for a
//! batch event with 5,000 and 50,000 local subscribers, each watching its
//! place in the same queue. Every watch moves up and gets a position
//! message: the work of working out 50,000 places, serialising 50,000
//! messages and queueing each on its socket's channel. Writing the frames
//! to sockets happens later, in each socket's task; `velvet loadtest`
//! measures that end to end.
//!
//! Figures and how to read them: `benches/README.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use tokio::sync::mpsc::Receiver;
use uuid::Uuid;
use velvet::catalog::Catalog;
use velvet::domain::{Experience, Id};
use velvet::store::memory::MemoryStore;
use velvet::store::{Event, GrantNote, Store};
use velvet::ws::hub::Hub;

const SUBSCRIBERS: [usize; 2] = [5_000, 50_000];
/// Admitted per batch: 600 a minute at one tick a second.
const ADMITTED: usize = 10;

/// A hub with `n` sockets watching one queue, as a node has after they
/// entered and connected, and the receivers the socket tasks would read.
struct Watched {
    hub: Arc<Hub>,
    seq: Id,
    receivers: Vec<Receiver<Arc<str>>>,
    version: u64,
}

async fn watched(n: usize) -> Watched {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let experience: Experience = serde_json::from_value(serde_json::json!({
        "id": "fanout", "name": "Fan-out",
        "sequences": [{ "id": "fanout-q", "name": "General", "kind": "queue",
                        "admitPerMinute": 600 }],
    }))
    .expect("a valid experience");
    store.put_experience(&experience, false).await.expect("put");
    let catalog = Arc::new(Catalog::new(store.clone()));
    catalog.refresh().await.expect("catalog");

    // The node's own channel size: room for 32 messages per socket.
    let hub = Arc::new(Hub::new(store, catalog, 32));
    let seq = Id::parse("fanout-q").expect("id");
    let mut receivers = Vec::with_capacity(n);
    for i in 0..n {
        let consumer = Uuid::from_u128(i as u128 + 1);
        let (_, rx) = hub.register(consumer);
        receivers.push(rx);
        // Far back in line, so no one reaches the head during the bench.
        let pos = 1_000_000 + i as u64;
        hub.on_event(Event::Entered {
            seq: seq.clone(),
            v: 0,
            c: consumer,
            score: (1 << 33) + pos,
            pos,
        });
    }
    let mut w = Watched {
        hub,
        seq,
        receivers,
        version: 0,
    };
    w.drain();
    w
}

impl Watched {
    /// Empties every socket's channel, as the socket tasks would.
    fn drain(&mut self) -> usize {
        let mut read = 0;
        for rx in &mut self.receivers {
            while rx.try_recv().is_ok() {
                read += 1;
            }
        }
        read
    }

    /// The next batch: admitted consumers connected to other nodes, so
    /// that every socket here stays in line and moves up.
    fn batch(&mut self) -> Event {
        self.version += 1;
        let admitted = (0..ADMITTED)
            .map(|i| GrantNote {
                c: Uuid::from_u128(u128::MAX - i as u128),
                k: format!("eyJ{}", "x".repeat(420)),
                x: 0,
            })
            .collect();
        Event::Batch {
            seq: self.seq.clone(),
            v: self.version,
            admitted,
            total: self.version * ADMITTED as u64,
        }
    }

    fn timed_batches(&mut self, iters: u64) -> Duration {
        let mut elapsed = Duration::ZERO;
        for _ in 0..iters {
            let event = self.batch();
            let started = Instant::now();
            self.hub.on_event(event);
            elapsed += started.elapsed();
            let read = self.drain();
            assert_eq!(read, self.receivers.len(), "one message per socket");
        }
        elapsed
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Per-message counters cost what they cost on a node.
    velvet::metrics::install();
    let _inside = rt.enter();

    let mut group = c.benchmark_group("fanout_batch");
    group.sample_size(10);
    for n in SUBSCRIBERS {
        let mut w = rt.block_on(watched(n));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| w.timed_batches(iters));
        });
    }
    group.finish();
    c.final_summary();
}
