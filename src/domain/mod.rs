//! The waiting room's vocabulary: ids, experiences and their sequences,
//! queue entries, and the clock they are measured with.

pub mod clock;
pub mod entry;
pub mod experience;
pub mod id;

pub use entry::{Entry, EntryState, Grant};
pub use experience::{Experience, ExperienceState, Kind, Sequence, SequencePatch};
pub use id::Id;
