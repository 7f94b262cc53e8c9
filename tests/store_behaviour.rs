//! One behavioural suite, run against the in-process store and a real Redis:
//! both must keep the same promises. Time is passed in, so windows and
//! expiry are tested without waiting.

mod common;

use std::sync::Arc;

use uuid::Uuid;
use velvet::domain::entry::TICKET_BASE;
use velvet::domain::{Entry, EntryState, Grant, Id};
use velvet::store::memory::MemoryStore;
use velvet::store::{
    EnterOutcome, EnterRequest, Event, LeaveOutcome, Limits, RedeemOutcome, Refusal,
    Store, StoreError,
};

const T0: i64 = 1_800_000_000_000;
const TTL: i64 = 600_000;

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn memory() {
                let store: std::sync::Arc<dyn velvet::store::Store> =
                    std::sync::Arc::new(velvet::store::memory::MemoryStore::new());
                super::$name(store).await;
            }

            #[tokio::test]
            async fn redis() {
                let server = crate::common::RedisServer::start();
                super::$name(server.store().await).await;
            }

            #[tokio::test]
            async fn redis_cluster() {
                let cluster = crate::common::RedisCluster::start();
                super::$name(cluster.store().await).await;
            }
        }
    )*};
}

on_both_stores!(
    entering_twice_returns_the_same_entry_and_positions_follow_arrival,
    early_arrivals_are_shuffled_ahead_of_everyone_who_came_after_opening,
    a_full_line_refuses_newcomers_but_gives_back_existing_entries,
    a_refusal_still_gives_an_entrant_their_place,
    leaving_moves_everyone_behind_up_and_frees_a_place,
    admission_takes_the_head_within_the_minute_window,
    outstanding_tokens_cap_admission_until_they_expire_or_are_redeemed,
    a_stale_fencing_token_writes_nothing,
    a_token_is_redeemed_once_and_never_after_expiry,
    giving_up_an_admission_revokes_the_token_and_frees_its_slot,
    leases_are_exclusive_and_each_new_holder_gets_a_larger_fence,
    events_report_each_change_with_consecutive_versions,
    a_thousand_concurrent_arrivals_get_distinct_positions,
    a_sequence_id_belongs_to_its_first_experience_for_good,
);

fn seq() -> Id {
    Id::parse(&format!("q-{}", &Uuid::new_v4().simple().to_string()[..8])).unwrap()
}

fn request(consumer: Uuid, now: i64) -> EnterRequest {
    EnterRequest {
        consumer_id: consumer,
        external_id: None,
        now,
        opens_at: 0,
        max_participants: None,
        prequeue_score: u64::from(rand::random::<u32>()),
        refuse: None,
    }
}

async fn enter(store: &dyn Store, seq: &Id, req: EnterRequest) -> Entry {
    match store.enter(seq, req).await.unwrap() {
        EnterOutcome::Entered(entry, _) => entry,
        EnterOutcome::Refused(r) => panic!("refused: {r:?}"),
    }
}

async fn enter_many(store: &dyn Store, seq: &Id, n: usize, now: i64) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = Uuid::new_v4();
        enter(store, seq, request(id, now)).await;
        ids.push(id);
    }
    ids
}

fn grant_for(consumer: Uuid, now: i64) -> Grant {
    Grant {
        jti: Uuid::new_v4().simple().to_string(),
        token: format!("token-{consumer}"),
        expires_at: now + TTL,
    }
}

/// Plays one leader tick: who fits, then a fenced write. Returns admitted.
async fn admit(
    store: &dyn Store,
    seq: &Id,
    fence: u64,
    now: i64,
    limits: Limits,
) -> Vec<Uuid> {
    let head = store.admission_room(seq, now, limits).await.unwrap();
    let grants: Vec<(Uuid, Grant)> =
        head.iter().map(|(c, _)| (*c, grant_for(*c, now))).collect();
    let n = store.admit(seq, fence, now, &grants).await.unwrap();
    assert_eq!(n as usize, grants.len());
    head.into_iter().map(|(c, _)| c).collect()
}

async fn lead(store: &dyn Store, seq: &Id) -> u64 {
    store
        .acquire_lease(seq.as_str(), "test-node", 60_000)
        .await
        .unwrap()
        .expect("lease")
}

fn limits(want: u64, per_minute: u64, max_active: Option<u64>) -> Limits {
    Limits {
        want,
        per_minute,
        max_active,
    }
}

async fn position(store: &dyn Store, seq: &Id, consumer: Uuid) -> Option<u64> {
    store
        .entry(seq, consumer)
        .await
        .unwrap()
        .and_then(|e| e.position)
}

async fn entering_twice_returns_the_same_entry_and_positions_follow_arrival(
    store: Arc<dyn Store>,
) {
    let seq = seq();
    let ids = enter_many(store.as_ref(), &seq, 3, T0).await;
    let again = enter(store.as_ref(), &seq, request(ids[1], T0 + 5)).await;
    assert_eq!(again.position, Some(2));
    assert_eq!(again.entered_at, T0, "the first arrival time is kept");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            position(store.as_ref(), &seq, *id).await,
            Some(i as u64 + 1)
        );
    }
    assert_eq!(store.queue_stats(&seq, T0).await.unwrap().waiting, 3);
}

async fn early_arrivals_are_shuffled_ahead_of_everyone_who_came_after_opening(
    store: Arc<dyn Store>,
) {
    let seq = seq();
    let opens = T0 + 1_000;
    let mut early = Vec::new();
    for score in [30u64, 10, 20] {
        let id = Uuid::new_v4();
        let req = EnterRequest {
            opens_at: opens,
            prequeue_score: score,
            ..request(id, T0)
        };
        let entry = enter(store.as_ref(), &seq, req).await;
        assert!(entry.score < TICKET_BASE);
        early.push(id);
    }
    let late = Uuid::new_v4();
    let req = EnterRequest {
        opens_at: opens,
        ..request(late, opens + 1)
    };
    enter(store.as_ref(), &seq, req).await;

    // The random scores (10, 20, 30) decide the early order, not arrival.
    assert_eq!(position(store.as_ref(), &seq, early[1]).await, Some(1));
    assert_eq!(position(store.as_ref(), &seq, early[2]).await, Some(2));
    assert_eq!(position(store.as_ref(), &seq, early[0]).await, Some(3));
    assert_eq!(position(store.as_ref(), &seq, late).await, Some(4));
}

async fn a_full_line_refuses_newcomers_but_gives_back_existing_entries(
    store: Arc<dyn Store>,
) {
    let seq = seq();
    let capped = |id| EnterRequest {
        max_participants: Some(2),
        ..request(id, T0)
    };
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    enter(store.as_ref(), &seq, capped(a)).await;
    enter(store.as_ref(), &seq, capped(b)).await;
    let refused = store.enter(&seq, capped(c)).await.unwrap();
    assert_eq!(refused, EnterOutcome::Refused(Refusal::Full));
    let back = enter(store.as_ref(), &seq, capped(a)).await;
    assert_eq!(back.position, Some(1));
}

async fn a_refusal_still_gives_an_entrant_their_place(store: Arc<dyn Store>) {
    let seq = seq();
    let a = Uuid::new_v4();
    enter(store.as_ref(), &seq, request(a, T0)).await;
    let closed = |id| EnterRequest {
        refuse: Some(Refusal::Closed),
        ..request(id, T0)
    };
    let back = enter(store.as_ref(), &seq, closed(a)).await;
    assert_eq!(back.state, EntryState::Waiting);
    let outcome = store.enter(&seq, closed(Uuid::new_v4())).await.unwrap();
    assert_eq!(outcome, EnterOutcome::Refused(Refusal::Closed));
}

async fn leaving_moves_everyone_behind_up_and_frees_a_place(store: Arc<dyn Store>) {
    let seq = seq();
    let ids = enter_many(store.as_ref(), &seq, 3, T0).await;
    assert_eq!(
        store.leave(&seq, ids[0], T0).await.unwrap(),
        LeaveOutcome::Left
    );
    assert_eq!(position(store.as_ref(), &seq, ids[1]).await, Some(1));
    assert_eq!(position(store.as_ref(), &seq, ids[2]).await, Some(2));
    assert!(store.entry(&seq, ids[0]).await.unwrap().is_none());
    assert_eq!(
        store.leave(&seq, ids[0], T0).await.unwrap(),
        LeaveOutcome::NotFound
    );

    // Coming back after leaving means the back of the line.
    let back = enter(store.as_ref(), &seq, request(ids[0], T0 + 10)).await;
    assert_eq!(back.position, Some(3));
}

async fn admission_takes_the_head_within_the_minute_window(store: Arc<dyn Store>) {
    let seq = seq();
    let ids = enter_many(store.as_ref(), &seq, 10, T0).await;
    let fence = lead(store.as_ref(), &seq).await;

    let first = admit(store.as_ref(), &seq, fence, T0, limits(3, 4, None)).await;
    assert_eq!(first, ids[..3]);
    // One more fits in this minute, however many are asked for.
    let second =
        admit(store.as_ref(), &seq, fence, T0 + 30_000, limits(5, 4, None)).await;
    assert_eq!(second, ids[3..4]);
    let none = admit(store.as_ref(), &seq, fence, T0 + 59_999, limits(5, 4, None)).await;
    assert!(none.is_empty());
    // A minute after the first batch, its three places come back.
    let third = admit(store.as_ref(), &seq, fence, T0 + 60_000, limits(5, 4, None)).await;
    assert_eq!(third, ids[4..7]);

    let entry = store.entry(&seq, ids[0]).await.unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Admitted);
    assert_eq!(entry.grant.unwrap().token, format!("token-{}", ids[0]));
    assert_eq!(position(store.as_ref(), &seq, ids[7]).await, Some(1));
    let stats = store.queue_stats(&seq, T0 + 60_000).await.unwrap();
    assert_eq!(
        (stats.waiting, stats.admitted_total, stats.active),
        (3, 7, 7)
    );
}

async fn outstanding_tokens_cap_admission_until_they_expire_or_are_redeemed(
    store: Arc<dyn Store>,
) {
    let seq = seq();
    let ids = enter_many(store.as_ref(), &seq, 5, T0).await;
    let fence = lead(store.as_ref(), &seq).await;
    let cap = limits(10, 1_000, Some(2));

    assert_eq!(admit(store.as_ref(), &seq, fence, T0, cap).await, ids[..2]);
    assert!(
        admit(store.as_ref(), &seq, fence, T0 + 1, cap)
            .await
            .is_empty()
    );

    // A redeemed token frees its slot.
    let grant = store
        .entry(&seq, ids[0])
        .await
        .unwrap()
        .unwrap()
        .grant
        .unwrap();
    let redeemed = store
        .redeem(&seq, ids[0], &grant.jti, T0 + 2)
        .await
        .unwrap();
    assert_eq!(redeemed, RedeemOutcome::Redeemed);
    assert_eq!(
        admit(store.as_ref(), &seq, fence, T0 + 3, cap).await,
        ids[2..3]
    );

    // So does an expired one.
    let later = T0 + 3 + TTL;
    assert_eq!(
        admit(store.as_ref(), &seq, fence, later, cap).await,
        ids[3..5]
    );
}

async fn a_stale_fencing_token_writes_nothing(store: Arc<dyn Store>) {
    let seq = seq();
    let ids = enter_many(store.as_ref(), &seq, 1, T0).await;
    let fence = lead(store.as_ref(), &seq).await;
    let grants = vec![(ids[0], grant_for(ids[0], T0))];
    let stale = store.admit(&seq, fence + 1, T0, &grants).await;
    assert!(matches!(stale, Err(StoreError::StaleFence)));
    let entry = store.entry(&seq, ids[0]).await.unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Waiting);
}

async fn a_token_is_redeemed_once_and_never_after_expiry(store: Arc<dyn Store>) {
    let seq = seq();
    let ids = enter_many(store.as_ref(), &seq, 2, T0).await;
    let fence = lead(store.as_ref(), &seq).await;
    admit(store.as_ref(), &seq, fence, T0, limits(2, 100, None)).await;
    let jti = |e: Option<Entry>| e.unwrap().grant.unwrap().jti;
    let first = jti(store.entry(&seq, ids[0]).await.unwrap());
    let second = jti(store.entry(&seq, ids[1]).await.unwrap());

    let redeem = |c, j: String, t| {
        let store = store.clone();
        let seq = seq.clone();
        async move { store.redeem(&seq, c, &j, t).await.unwrap() }
    };
    assert_eq!(
        redeem(ids[0], first.clone(), T0).await,
        RedeemOutcome::Redeemed
    );
    assert_eq!(
        redeem(ids[0], first.clone(), T0).await,
        RedeemOutcome::AlreadyRedeemed
    );
    assert_eq!(
        redeem(ids[0], "other".into(), T0).await,
        RedeemOutcome::Unknown
    );
    assert_eq!(
        redeem(ids[1], second, T0 + TTL).await,
        RedeemOutcome::Expired
    );
    assert_eq!(store.queue_stats(&seq, T0).await.unwrap().redeemed_total, 1);
}

async fn giving_up_an_admission_revokes_the_token_and_frees_its_slot(
    store: Arc<dyn Store>,
) {
    let seq = seq();
    let ids = enter_many(store.as_ref(), &seq, 2, T0).await;
    let fence = lead(store.as_ref(), &seq).await;
    let cap = limits(10, 100, Some(1));
    admit(store.as_ref(), &seq, fence, T0, cap).await;
    let jti = store
        .entry(&seq, ids[0])
        .await
        .unwrap()
        .unwrap()
        .grant
        .unwrap()
        .jti;

    assert_eq!(
        store.leave(&seq, ids[0], T0).await.unwrap(),
        LeaveOutcome::Released
    );
    let outcome = store.redeem(&seq, ids[0], &jti, T0).await.unwrap();
    assert_eq!(outcome, RedeemOutcome::Revoked);
    assert_eq!(
        admit(store.as_ref(), &seq, fence, T0 + 1, cap).await,
        ids[1..2]
    );
}

async fn leases_are_exclusive_and_each_new_holder_gets_a_larger_fence(
    store: Arc<dyn Store>,
) {
    let name = seq();
    let name = name.as_str();
    let a = store
        .acquire_lease(name, "a", 200)
        .await
        .unwrap()
        .expect("a leads");
    assert_eq!(store.acquire_lease(name, "b", 200).await.unwrap(), None);
    assert_eq!(
        store.acquire_lease(name, "a", 200).await.unwrap(),
        Some(a),
        "renewal"
    );

    store.release_lease(name, "b").await.unwrap();
    assert_eq!(
        store.acquire_lease(name, "b", 200).await.unwrap(),
        None,
        "not b's to free"
    );

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let b = store
        .acquire_lease(name, "b", 200)
        .await
        .unwrap()
        .expect("b after expiry");
    assert!(b > a);
    store.release_lease(name, "b").await.unwrap();
    let c = store
        .acquire_lease(name, "c", 200)
        .await
        .unwrap()
        .expect("c after release");
    assert!(c > b);
}

async fn events_report_each_change_with_consecutive_versions(store: Arc<dyn Store>) {
    let seq = seq();
    let mut events = store.subscribe();
    let ids = enter_many(store.as_ref(), &seq, 3, T0).await;
    store.leave(&seq, ids[0], T0).await.unwrap();
    let fence = lead(store.as_ref(), &seq).await;
    admit(store.as_ref(), &seq, fence, T0, limits(1, 100, None)).await;

    let mut seen = Vec::new();
    while seen.len() < 5 {
        let event =
            tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
                .await
                .expect("event in time")
                .expect("feed open");
        match event {
            Event::Entered { seq: s, .. }
            | Event::Left { seq: s, .. }
            | Event::Batch { seq: s, .. }
                if s != seq => {}
            Event::Experience { .. } | Event::Resync => {}
            other => seen.push(other),
        }
    }
    assert!(matches!(seen[0], Event::Entered { v: 0, pos: 1, .. }));
    assert!(matches!(seen[2], Event::Entered { v: 0, pos: 3, .. }));
    assert!(matches!(seen[3], Event::Left { v: 1, .. }));
    match &seen[4] {
        Event::Batch {
            v, admitted, total, ..
        } => {
            assert_eq!((*v, *total), (2, 1));
            assert_eq!(admitted[0].c, ids[1]);
        }
        other => panic!("expected a batch, got {other:?}"),
    }
}

async fn a_thousand_concurrent_arrivals_get_distinct_positions(store: Arc<dyn Store>) {
    let seq = seq();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let store = store.clone();
            let seq = seq.clone();
            tokio::spawn(async move {
                let id = Uuid::new_v4();
                enter(store.as_ref(), &seq, request(id, T0))
                    .await
                    .position
                    .unwrap()
            })
        })
        .collect();
    let mut positions = Vec::new();
    for task in tasks {
        positions.push(task.await.unwrap());
    }
    positions.sort_unstable();
    assert_eq!(positions, (1..=1000).collect::<Vec<u64>>());
}

#[tokio::test]
async fn memory_store_is_usable_behind_the_trait() {
    // Guards the macro above: an empty store answers with empty results.
    let store = MemoryStore::new();
    let stats = store.queue_stats(&seq(), T0).await.unwrap();
    assert_eq!(stats.waiting, 0);
}

fn experience(id: &str, seqs: &[&Id]) -> velvet::domain::Experience {
    let sequences: Vec<serde_json::Value> = seqs
        .iter()
        .map(|s| serde_json::json!({ "id": s, "name": "Q", "kind": "queue" }))
        .collect();
    let json = serde_json::json!({ "id": id, "name": id, "sequences": sequences });
    let mut exp: velvet::domain::Experience = serde_json::from_value(json).unwrap();
    exp.validate().unwrap();
    exp
}

async fn a_sequence_id_belongs_to_its_first_experience_for_good(store: Arc<dyn Store>) {
    use velvet::store::PutOutcome;
    let (q, other) = (seq(), seq());
    let first = experience("first", &[&q]);
    assert_eq!(
        store.put_experience(&first, false).await.unwrap(),
        PutOutcome::Written
    );
    assert_eq!(
        store.put_experience(&first, true).await.unwrap(),
        PutOutcome::Kept
    );
    // Dropped from its experience, the id still may not move elsewhere.
    let moved_on = experience("first", &[&other]);
    assert_eq!(
        store.put_experience(&moved_on, false).await.unwrap(),
        PutOutcome::Written
    );
    let thief = experience("second", &[&q]);
    let owned = PutOutcome::SequenceOwned {
        sequence: q.clone(),
        owner: Id::parse("first").unwrap(),
    };
    assert_eq!(store.put_experience(&thief, false).await.unwrap(), owned);
    let back = experience("first", &[&q, &other]);
    assert_eq!(
        store.put_experience(&back, false).await.unwrap(),
        PutOutcome::Written
    );
}
