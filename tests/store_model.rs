//! Random sequences of enter / leave / admit / redeem / time passing, played
//! against the in-process store, a real Redis and a plain model written
//! here: after every step all three must agree on every consumer's state,
//! position and grant, and admission must never break its limits.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;
use uuid::Uuid;
use velvet::domain::{EntryState, Grant, Id};
use velvet::store::memory::MemoryStore;
use velvet::store::{
    EnterOutcome, EnterRequest, LeaveOutcome, Limits, RedeemOutcome, Store,
};

const CONSUMERS: usize = 6;
const TTL: i64 = 90_000;
const MINUTE: i64 = 60_000;

#[derive(Clone, Debug)]
enum Op {
    Enter(usize),
    Leave(usize),
    Admit {
        want: u64,
        per_minute: u64,
        max_active: Option<u64>,
    },
    Redeem(usize),
    Wait(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..CONSUMERS).prop_map(Op::Enter),
        1 => (0..CONSUMERS).prop_map(Op::Leave),
        2 => (0u64..4, 1u64..6, proptest::option::of(1u64..4))
            .prop_map(|(want, per_minute, max_active)| Op::Admit { want, per_minute, max_active }),
        1 => (0..CONSUMERS).prop_map(Op::Redeem),
        1 => (0i64..50_000).prop_map(Op::Wait),
    ]
}

/// The model: a list in arrival order and a record per consumer.
#[derive(Default)]
struct Model {
    line: Vec<usize>,
    records: HashMap<usize, (EntryState, Option<(String, i64)>)>,
    batches: Vec<(i64, u64)>,
}

impl Model {
    fn enter(&mut self, c: usize, max: u64) -> bool {
        if self.records.contains_key(&c) {
            return true;
        }
        if self.records.len() as u64 >= max {
            return false;
        }
        self.line.push(c);
        self.records.insert(c, (EntryState::Waiting, None));
        true
    }

    fn leave(&mut self, c: usize, now: i64) -> LeaveOutcome {
        match self.records.get_mut(&c) {
            None => LeaveOutcome::NotFound,
            Some((EntryState::Waiting, _)) => {
                self.line.retain(|x| *x != c);
                self.records.remove(&c);
                LeaveOutcome::Left
            }
            Some((state @ EntryState::Admitted, Some((_, exp)))) if *exp > now => {
                *state = EntryState::Left;
                LeaveOutcome::Released
            }
            Some(_) => LeaveOutcome::Unchanged,
        }
    }

    fn room(&self, now: i64, l: Limits) -> Vec<usize> {
        let used: u64 = self
            .batches
            .iter()
            .filter(|(t, _)| *t > now - MINUTE)
            .map(|b| b.1)
            .sum();
        let active = self
            .records
            .values()
            .filter(|(s, g)| {
                *s == EntryState::Admitted && g.as_ref().is_some_and(|g| g.1 > now)
            })
            .count() as u64;
        let mut room = l.want.min(l.per_minute.saturating_sub(used));
        if let Some(max) = l.max_active {
            room = room.min(max.saturating_sub(active));
        }
        self.line.iter().take(room as usize).copied().collect()
    }

    fn admit(&mut self, now: i64, head: &[usize], jtis: &[String]) {
        for (c, jti) in head.iter().zip(jtis) {
            self.line.retain(|x| x != c);
            self.records
                .insert(*c, (EntryState::Admitted, Some((jti.clone(), now + TTL))));
        }
        if !head.is_empty() {
            self.batches.push((now, head.len() as u64));
        }
    }

    fn redeem(&mut self, c: usize, now: i64) -> RedeemOutcome {
        let Some((state, Some((_, exp)))) = self.records.get_mut(&c) else {
            return RedeemOutcome::Unknown;
        };
        match state {
            EntryState::Redeemed => RedeemOutcome::AlreadyRedeemed,
            EntryState::Left => RedeemOutcome::Revoked,
            _ if *exp <= now => RedeemOutcome::Expired,
            _ => {
                *state = EntryState::Redeemed;
                RedeemOutcome::Redeemed
            }
        }
    }

    fn expected(&self, c: usize) -> Option<(EntryState, Option<u64>, Option<String>)> {
        let (state, grant) = self.records.get(&c)?;
        let position = self.line.iter().position(|x| *x == c).map(|p| p as u64 + 1);
        Some((*state, position, grant.as_ref().map(|g| g.0.clone())))
    }
}

async fn observed(
    store: &dyn Store,
    seq: &Id,
    consumer: Uuid,
) -> Option<(EntryState, Option<u64>, Option<String>)> {
    let entry = store.entry(seq, consumer).await.unwrap()?;
    Some((entry.state, entry.position, entry.grant.map(|g| g.jti)))
}

async fn play(stores: &[Arc<dyn Store>], ops: Vec<Op>, max_participants: u64) {
    let seq =
        Id::parse(&format!("m-{}", &Uuid::new_v4().simple().to_string()[..10])).unwrap();
    let consumers: Vec<Uuid> = (0..CONSUMERS).map(|_| Uuid::new_v4()).collect();
    let mut fences = Vec::new();
    for store in stores {
        fences.push(
            store
                .acquire_lease(seq.as_str(), "model", 600_000)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let mut model = Model::default();
    let mut now: i64 = 1_900_000_000_000;
    let mut batch_no = 0;

    for op in ops {
        match op.clone() {
            Op::Enter(c) => {
                let accepted = model.enter(c, max_participants);
                for store in stores {
                    let req = EnterRequest {
                        consumer_id: consumers[c],
                        external_id: None,
                        now,
                        opens_at: 0,
                        max_participants: Some(max_participants),
                        prequeue_score: 0,
                        refuse: None,
                    };
                    let outcome = store.enter(&seq, req).await.unwrap();
                    assert_eq!(
                        matches!(outcome, EnterOutcome::Entered(..)),
                        accepted,
                        "{op:?}"
                    );
                }
            }
            Op::Leave(c) => {
                let expected = model.leave(c, now);
                for store in stores {
                    assert_eq!(
                        store.leave(&seq, consumers[c], now).await.unwrap(),
                        expected
                    );
                }
            }
            Op::Admit {
                want,
                per_minute,
                max_active,
            } => {
                let limits = Limits {
                    want,
                    per_minute,
                    max_active,
                };
                let head = model.room(now, limits);
                batch_no += 1;
                let jtis: Vec<String> =
                    head.iter().map(|c| format!("b{batch_no}-{c}")).collect();
                for (store, fence) in stores.iter().zip(&fences) {
                    let got = store.admission_room(&seq, now, limits).await.unwrap();
                    let want_ids: Vec<Uuid> =
                        head.iter().map(|c| consumers[*c]).collect();
                    let got_ids: Vec<Uuid> = got.iter().map(|(c, _)| *c).collect();
                    assert_eq!(got_ids, want_ids, "{op:?}");
                    let grants: Vec<(Uuid, Grant)> = head
                        .iter()
                        .zip(&jtis)
                        .map(|(c, jti)| {
                            let grant = Grant {
                                jti: jti.clone(),
                                token: format!("t-{jti}"),
                                expires_at: now + TTL,
                            };
                            (consumers[*c], grant)
                        })
                        .collect();
                    let n = store.admit(&seq, *fence, now, &grants).await.unwrap();
                    assert_eq!(n as usize, head.len());
                }
                model.admit(now, &head, &jtis);
            }
            Op::Redeem(c) => {
                let jti = model.records.get(&c).and_then(|r| r.1.clone()).map(|g| g.0);
                let expected = model.redeem(c, now);
                for store in stores {
                    let got = match &jti {
                        Some(jti) => {
                            store.redeem(&seq, consumers[c], jti, now).await.unwrap()
                        }
                        None => {
                            store.redeem(&seq, consumers[c], "none", now).await.unwrap()
                        }
                    };
                    assert_eq!(got, expected, "{op:?}");
                }
            }
            Op::Wait(ms) => now += ms,
        }

        for (i, consumer) in consumers.iter().enumerate() {
            let expected = model.expected(i);
            for store in stores {
                assert_eq!(
                    observed(store.as_ref(), &seq, *consumer).await,
                    expected,
                    "after {op:?}"
                );
            }
        }
        // The hard limit: never more than the smallest per-minute asked for
        // in any minute is a property of each batch; check the window total.
        let recent: u64 = model
            .batches
            .iter()
            .filter(|(t, _)| *t > now - MINUTE)
            .map(|b| b.1)
            .sum();
        let stats = stores[0].queue_stats(&seq, now).await.unwrap();
        assert_eq!(stats.admitted_last_minute, recent);
    }
}

#[test]
fn both_stores_agree_with_the_model() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let redis = common::RedisServer::start();
    let redis_store = runtime.block_on(redis.store());
    let config = ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..40), max in 2u64..8)| {
        let stores: Vec<Arc<dyn Store>> = vec![Arc::new(MemoryStore::new()), redis_store.clone()];
        runtime.block_on(play(&stores, ops, max));
    });
}

#[test]
fn admission_never_exceeds_the_rate_over_any_minute() {
    // Many small ticks over five minutes with a fixed rate: every sliding
    // minute of recorded batches stays within it.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let redis = common::RedisServer::start();
    runtime.block_on(async {
        let stores: Vec<Arc<dyn Store>> =
            vec![Arc::new(MemoryStore::new()), redis.store().await];
        for store in stores {
            let seq = Id::parse("rate-check").unwrap();
            for _ in 0..200 {
                let req = EnterRequest {
                    consumer_id: Uuid::new_v4(),
                    external_id: None,
                    now: 0,
                    opens_at: 0,
                    max_participants: None,
                    prequeue_score: 0,
                    refuse: None,
                };
                store.enter(&seq, req).await.unwrap();
            }
            let fence = store
                .acquire_lease("rate-check", "n", 600_000)
                .await
                .unwrap()
                .unwrap();
            let mut batches: Vec<(i64, u64)> = Vec::new();
            let mut now = 1_900_000_000_000i64;
            for step in 0..300 {
                now += 700 + (step % 7) * 150;
                let limits = Limits {
                    want: 9,
                    per_minute: 25,
                    max_active: None,
                };
                let head = store.admission_room(&seq, now, limits).await.unwrap();
                let grants: Vec<(Uuid, Grant)> = head
                    .iter()
                    .map(|(c, _)| {
                        let jti = Uuid::new_v4().to_string();
                        (
                            *c,
                            Grant {
                                jti,
                                token: "t".into(),
                                expires_at: now + 1_000,
                            },
                        )
                    })
                    .collect();
                let n = store.admit(&seq, fence, now, &grants).await.unwrap();
                if n > 0 {
                    batches.push((now, n));
                }
            }
            for (start, _) in &batches {
                let in_minute: u64 = batches
                    .iter()
                    .filter(|(t, _)| *t >= *start && *t < start + MINUTE)
                    .map(|b| b.1)
                    .sum();
                assert!(
                    in_minute <= 25,
                    "{in_minute} admitted in the minute from {start}"
                );
            }
            let total: u64 = batches.iter().map(|b| b.1).sum();
            assert!(total >= 100, "admission kept going: {total}");
        }
    });
}
