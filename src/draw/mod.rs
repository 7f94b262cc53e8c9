//! Draws anyone can check: commit to a seed when registration opens,
//! shuffle the entrants with it when registration closes, reveal it after.
//!
//! Algorithm `velvet-draw-v1` (written out for re-implementers in
//! `docs/draws.md`):
//!
//! 1. The seed is 32 random bytes; `seedCommitment` = hex(SHA-256(seed)).
//! 2. Each entrant is published as hex(SHA-256("velvet-draw-v1|" + drawId +
//!    "|" + consumerId)); the entrant list is these strings sorted
//!    ascending (byte order), which makes it independent of arrival order.
//! 3. A stream of 64-bit numbers: block k (k = 0, 1, …) is
//!    SHA-256(seed ‖ k as 8 bytes big-endian); each block gives four
//!    numbers, its bytes 0–7, 8–15, 16–23, 24–31, each read big-endian.
//! 4. uniform(b): take the next number x; if x ≥ b·⌊(2^64−1)/b⌋ discard it
//!    and take another; else the result is x mod b.
//! 5. Fisher–Yates: start with the sorted list; for i from n−1 down to 1,
//!    j = uniform(i+1), swap positions i and j. The result is the drawn
//!    order; its first `winners` entries win and the rest wait, in that
//!    order, for slots that winners leave unredeemed.

pub mod result;
pub mod run;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const ALGORITHM: &str = "velvet-draw-v1";

/// The published, unlinkable-across-draws name of one entrant.
pub fn entrant_hash(draw_id: &str, consumer: &Uuid) -> String {
    let text = format!("{ALGORITHM}|{draw_id}|{consumer}");
    hex::encode(Sha256::digest(text.as_bytes()))
}

pub fn commitment(seed: &[u8]) -> String {
    hex::encode(Sha256::digest(seed))
}

/// A fresh secret seed, as hex.
pub fn new_seed() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The deterministic number stream of step 3.
struct Stream<'a> {
    seed: &'a [u8],
    block: u64,
    pending: Vec<u64>,
}

impl Stream<'_> {
    fn next(&mut self) -> u64 {
        if self.pending.is_empty() {
            let mut hasher = Sha256::new();
            hasher.update(self.seed);
            hasher.update(self.block.to_be_bytes());
            self.block += 1;
            let digest = hasher.finalize();
            // Reversed so that pop() yields bytes 0–7 first.
            self.pending = digest
                .chunks_exact(8)
                .rev()
                .map(|c| u64::from_be_bytes(c.try_into().expect("8-byte chunk")))
                .collect();
        }
        self.pending
            .pop()
            .expect("a refilled block has four numbers")
    }

    /// Unbiased: values in the incomplete top range are discarded.
    fn uniform(&mut self, bound: u64) -> u64 {
        let limit = (u64::MAX / bound) * bound;
        loop {
            let x = self.next();
            if x < limit {
                return x % bound;
            }
        }
    }
}

/// The drawn order of `sorted` (the canonical entrant list) under `seed`.
pub fn drawn_order<T: Clone>(seed: &[u8], sorted: &[T]) -> Vec<T> {
    let mut order = sorted.to_vec();
    let mut stream = Stream {
        seed,
        block: 0,
        pending: Vec::new(),
    };
    for i in (1..order.len()).rev() {
        let j = stream.uniform(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// What `GET /v1/draws/{id}/proof` publishes, and `velvet verify-draw` reads.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
    pub draw_id: String,
    pub algorithm: String,
    pub seed_commitment: Option<String>,
    /// Revealed after the draw.
    pub seed: Option<String>,
    pub winners: u64,
    pub entrant_count: u64,
    /// Canonical order; published once registration has closed.
    pub entrants: Vec<String>,
    pub drawn_order: Vec<String>,
    /// The first `winners` of the drawn order.
    pub winner_ids: Vec<String>,
}

/// Recomputes a published draw; `Err` says what does not match.
pub fn verify(proof: &Proof) -> Result<(), String> {
    if proof.algorithm != ALGORITHM {
        return Err(format!("unknown algorithm `{}`", proof.algorithm));
    }
    let seed_hex = proof
        .seed
        .as_deref()
        .ok_or("the seed is not revealed yet")?;
    let seed = hex::decode(seed_hex).map_err(|_| "the seed is not hex")?;
    let committed = proof
        .seed_commitment
        .as_deref()
        .ok_or("no seed commitment")?;
    if commitment(&seed) != committed {
        return Err("the seed does not match its commitment".into());
    }
    if proof.entrants.len() as u64 != proof.entrant_count {
        return Err("entrantCount does not match the entrant list".into());
    }
    if proof.entrants.windows(2).any(|w| w[0] >= w[1]) {
        return Err("the entrant list is not in canonical (sorted, unique) order".into());
    }
    let order = drawn_order(&seed, &proof.entrants);
    if order != proof.drawn_order {
        return Err("the drawn order does not follow from the seed and entrants".into());
    }
    let take = (proof.winners as usize).min(order.len());
    if proof.winner_ids != order[..take] {
        return Err("the winners are not the first of the drawn order".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_entrants_give_the_same_order() {
        let seed = [7u8; 32];
        let list: Vec<u32> = (0..50).collect();
        assert_eq!(drawn_order(&seed, &list), drawn_order(&seed, &list));
        assert_ne!(drawn_order(&seed, &list), drawn_order(&[8u8; 32], &list));
        let mut sorted = drawn_order(&seed, &list);
        sorted.sort_unstable();
        assert_eq!(sorted, list, "a permutation");
    }

    #[test]
    fn the_stream_reads_blocks_in_byte_order() {
        let seed = b"seed";
        let mut stream = Stream {
            seed,
            block: 0,
            pending: Vec::new(),
        };
        let mut hasher = Sha256::new();
        hasher.update(seed);
        hasher.update(0u64.to_be_bytes());
        let digest = hasher.finalize();
        let first = u64::from_be_bytes(digest[..8].try_into().unwrap());
        let second = u64::from_be_bytes(digest[8..16].try_into().unwrap());
        assert_eq!((stream.next(), stream.next()), (first, second));
    }
}
