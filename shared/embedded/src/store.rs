//! The asset store: one row per asset (the record as JSON plus the columns the conditions and
//! operator views need) and named counters that move in the same transaction.

use std::sync::Arc;

use async_trait::async_trait;
use cuepoint_core::asset::Asset;
use cuepoint_core::domain::AssetId;
use cuepoint_runtime::ports::{
    AssetStore, AssetWrite, CounterDelta, PortError, PortResult, StoreError,
};
use rusqlite::{params, Connection, OptionalExtension};

use crate::db::{blocking, Db, SqlResultExt};

pub struct SqliteAssetStore {
    db: Arc<Db>,
}

impl SqliteAssetStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

fn parse_asset(id: &str, json: &str) -> PortResult<Asset> {
    serde_json::from_str(json)
        .map_err(|e| PortError::Permanent(format!("stored asset {id} does not parse: {e}")))
}

fn read_counter(conn: &Connection, name: &str) -> PortResult<i64> {
    conn.prepare_cached("SELECT value FROM counters WHERE name = ?1")
        .and_then(|mut st| {
            st.query_row(params![name], |r| r.get::<_, i64>(0))
                .optional()
        })
        .map(|v| v.unwrap_or(0))
        .sql("read counter")
}

/// Apply `delta` to a counter: refused past `max` (only when rising), clamped at 0.
fn move_counter(conn: &Connection, c: &CounterDelta) -> Result<(), StoreError> {
    let current = read_counter(conn, &c.name)?;
    let next = current.saturating_add(c.delta);
    if let Some(max) = c.max {
        if c.delta > 0 && next > max {
            return Err(StoreError::CounterLimit {
                name: c.name.clone(),
                max,
            });
        }
    }
    let next = next.max(0);
    conn.prepare_cached("INSERT INTO counters (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
        .and_then(|mut st| st.execute(params![c.name, next]))
        .sql("write counter")?;
    Ok(())
}

/// The checks and the JSON of an asset write, made before it goes to the writer thread (which
/// then runs only SQL for it).
struct PreparedWrite {
    write: AssetWrite,
    json: String,
    version: i64,
}

fn prepare(write: AssetWrite) -> Result<PreparedWrite, StoreError> {
    let asset = &write.asset;
    let id = asset.id.as_str();
    let wanted = write.expected_version.map_or(1, |v| v + 1);
    if asset.version != wanted {
        return Err(PortError::Permanent(format!(
            "asset {id}: record version {} must be {wanted} (expected version {:?} + 1)",
            asset.version, write.expected_version
        ))
        .into());
    }
    let json = serde_json::to_string(asset)
        .map_err(|e| PortError::Permanent(format!("asset {id} does not serialize: {e}")))?;
    let version = i64::try_from(asset.version).map_err(|_| {
        PortError::Permanent(format!(
            "asset {id}: version {} out of range",
            asset.version
        ))
    })?;
    Ok(PreparedWrite {
        write,
        json,
        version,
    })
}

fn commit_in(tx: &Connection, prepared: &PreparedWrite) -> Result<(), StoreError> {
    let PreparedWrite {
        write,
        json,
        version,
    } = prepared;
    let asset = &write.asset;
    let id = asset.id.as_str();
    match write.expected_version {
        None => {
            let n = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO assets (id, version, state, updated_at_ms, json) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut st| st.execute(params![id, version, asset.state.as_str(), asset.updated_at_ms as i64, json]))
                .sql("insert asset")?;
            if n == 0 {
                return Err(StoreError::Conflict {
                    asset: asset.id.clone(),
                    detail: "the asset already exists".into(),
                });
            }
        }
        Some(expected) => {
            let n = tx
                .prepare_cached(
                    "UPDATE assets SET version = ?2, state = ?3, updated_at_ms = ?4, json = ?5 WHERE id = ?1 AND version = ?6",
                )
                .and_then(|mut st| {
                    st.execute(params![id, version, asset.state.as_str(), asset.updated_at_ms as i64, json, expected as i64])
                })
                .sql("update asset")?;
            if n == 0 {
                let stored: Option<i64> = tx
                    .prepare_cached("SELECT version FROM assets WHERE id = ?1")
                    .and_then(|mut st| st.query_row(params![id], |r| r.get(0)).optional())
                    .sql("read asset version")?;
                let detail = match stored {
                    Some(v) => format!("expected version {expected}, stored version is {v}"),
                    None => format!("expected version {expected}, the asset does not exist"),
                };
                return Err(StoreError::Conflict {
                    asset: asset.id.clone(),
                    detail,
                });
            }
        }
    }
    if let Some(c) = &write.counter {
        // A refusal rolls the asset write back with it (the write's savepoint).
        move_counter(tx, c)?;
    }
    Ok(())
}

#[async_trait]
impl AssetStore for SqliteAssetStore {
    async fn get(&self, id: &AssetId) -> PortResult<Option<Asset>> {
        let id = id.as_str().to_string();
        blocking(&self.db, move |conn| {
            let json: Option<String> = conn
                .prepare_cached("SELECT json FROM assets WHERE id = ?1")
                .and_then(|mut st| st.query_row(params![id], |r| r.get(0)).optional())
                .sql("read asset")?;
            json.map(|j| parse_asset(&id, &j)).transpose()
        })
        .await
    }

    async fn commit(&self, write: AssetWrite) -> Result<(), StoreError> {
        let prepared = prepare(write)?;
        self.db.write(move |tx| commit_in(tx, &prepared)).await
    }

    async fn list(&self) -> PortResult<Vec<Asset>> {
        blocking(&self.db, move |conn| {
            let rows: Vec<(String, String)> = conn
                .prepare_cached("SELECT id, json FROM assets ORDER BY id")
                .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .sql("list assets")?;
            rows.iter().map(|(id, j)| parse_asset(id, j)).collect()
        })
        .await
    }

    async fn counter(&self, name: &str) -> PortResult<i64> {
        let name = name.to_string();
        blocking(&self.db, move |conn| read_counter(conn, &name)).await
    }
}
