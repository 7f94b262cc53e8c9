//! Running a draw and building its proof. Any node may run a draw (the
//! leader at `closesAt`, or whichever node gets the admin call): closing is
//! idempotent, the order follows from the closed entrant list and the seed
//! alone, and the store records only the first result, so racing runners
//! agree and each winner's token is minted into the store once.

use uuid::Uuid;

use super::{ALGORITHM, Proof, commitment, drawn_order, entrant_hash, new_seed};
use crate::domain::{Grant, Id, Kind, Sequence};
use crate::store::{Store, StoreError, StoredExperience};
use crate::tokens::HandoffSigner;
use crate::tokens::handoff::Admission;

#[derive(Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// This call recorded the result, with this many winners.
    Drawn {
        winners: usize,
    },
    AlreadyDrawn,
}

pub async fn run(
    store: &dyn Store,
    signer: &HandoffSigner,
    stored: &StoredExperience,
    seq: &Sequence,
    now: i64,
) -> Result<RunOutcome, StoreError> {
    let snapshot = store.draw_close(&seq.id, &new_seed()).await?;
    if snapshot.drawn {
        return Ok(RunOutcome::AlreadyDrawn);
    }
    let seed = hex::decode(&snapshot.seed)
        .map_err(|_| StoreError::Corrupt("draw seed is not hex".into()))?;

    // Canonical order: by published hash, whatever the arrival order.
    let mut entrants: Vec<(String, Uuid, Option<String>)> = snapshot
        .entrants
        .into_iter()
        .map(|(c, ext)| (entrant_hash(seq.id.as_str(), &c), c, ext))
        .collect();
    entrants.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let order = drawn_order(&seed, &entrants);

    let winners = (seq.winners.unwrap_or(0) as usize).min(order.len());
    let grants: Vec<(Uuid, Grant)> = order[..winners]
        .iter()
        .filter_map(|(_, c, ext)| mint(signer, stored, seq, *c, ext.clone(), now))
        .collect();
    let ids: Vec<Uuid> = order.iter().map(|(_, c, _)| *c).collect();
    if store.draw_commit(&seq.id, now, &ids, &grants).await? {
        tracing::info!(draw = %seq.id, entrants = ids.len(), winners, "draw run");
        metrics::counter!("velvet_handoff_issued_total", "sequence" => seq.id.to_string())
            .increment(grants.len() as u64);
        Ok(RunOutcome::Drawn { winners })
    } else {
        Ok(RunOutcome::AlreadyDrawn)
    }
}

pub fn mint(
    signer: &HandoffSigner,
    stored: &StoredExperience,
    seq: &Sequence,
    consumer: Uuid,
    external_id: Option<String>,
    now: i64,
) -> Option<(Uuid, Grant)> {
    let admission = Admission {
        consumer,
        experience: stored.experience.id(),
        sequence: &seq.id,
        kind: Kind::Draw,
        external_id,
        now_ms: now,
        ttl_ms: seq.token_ttl_ms(),
    };
    match signer.mint(&admission) {
        Ok(grant) => Some((consumer, grant)),
        Err(e) => {
            tracing::error!(error = %e, "handoff token could not be signed");
            None
        }
    }
}

/// The published proof: the commitment always, the rest once closed.
pub async fn proof(store: &dyn Store, seq: &Sequence) -> Result<Proof, StoreError> {
    let status = store.draw_status(&seq.id).await?;
    let winners = seq.winners.unwrap_or(0);
    let seed_commitment = match &status.seed {
        Some(seed) => Some(commitment(
            &hex::decode(seed).map_err(|_| StoreError::Corrupt("draw seed".into()))?,
        )),
        None => None,
    };
    let mut proof = Proof {
        draw_id: seq.id.to_string(),
        algorithm: ALGORITHM.into(),
        seed_commitment,
        seed: None,
        winners,
        entrant_count: status.entrants,
        entrants: Vec::new(),
        drawn_order: Vec::new(),
        winner_ids: Vec::new(),
    };
    if status.drawn {
        let (entrants, order) = store.draw_record(&seq.id).await?;
        let hash = |c: &Uuid| entrant_hash(seq.id.as_str(), c);
        proof.entrants = entrants.iter().map(hash).collect();
        proof.entrants.sort_unstable();
        proof.entrant_count = proof.entrants.len() as u64;
        proof.drawn_order = order.iter().map(hash).collect();
        let take = (winners as usize).min(order.len());
        proof.winner_ids = proof.drawn_order[..take].to_vec();
        proof.seed = status.seed;
    }
    Ok(proof)
}

/// The id of a draw as the proof names it, for tests and tools.
pub fn published_id(draw: &Id, consumer: &Uuid) -> String {
    entrant_hash(draw.as_str(), consumer)
}
