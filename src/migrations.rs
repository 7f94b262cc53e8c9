//! Numbered keyspace migrations (`migrations/NNNN_name.lua`), applied in
//! order under a lease so that nodes starting together run each one once.
//! A node refuses a keyspace newer than the last migration it knows, since
//! its scripts would misread data laid out by a later version.

use std::time::Duration;

use crate::store::redis::MIGRATION_LEASE;
use crate::store::{Store, StoreError};

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub script: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_keyspace_v1",
        script: include_str!("../migrations/0001_keyspace_v1.lua"),
    },
    Migration {
        version: 2,
        name: "0002_sequence_owners",
        script: include_str!("../migrations/0002_sequence_owners.lua"),
    },
];

pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("the keyspace is at version {found}, newer than this node's {known}")]
    TooNew { found: u32, known: u32 },
    #[error("another node held the migration lease for too long")]
    LeaseTimeout,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Brings the keyspace to [`latest`], or explains why it cannot.
pub async fn run(store: &dyn Store, holder: &str) -> Result<(), MigrationError> {
    let known = latest();
    for _ in 0..100 {
        let found = store.schema_version().await?;
        if found > known {
            return Err(MigrationError::TooNew { found, known });
        }
        if found == known {
            return Ok(());
        }
        if store
            .acquire_lease(MIGRATION_LEASE, holder, 30_000)
            .await?
            .is_some()
        {
            let result = apply_pending(store).await;
            store.release_lease(MIGRATION_LEASE, holder).await?;
            return result;
        }
        // Another node is migrating; wait for it to finish.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(MigrationError::LeaseTimeout)
}

async fn apply_pending(store: &dyn Store) -> Result<(), MigrationError> {
    let found = store.schema_version().await?;
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        store.apply_migration(m.version, m.script).await?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
    }
    Ok(())
}
