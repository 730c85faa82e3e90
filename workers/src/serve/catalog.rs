//! The search catalog (embedded): an SQLite FTS5 index of what is in each asset — labels,
//! persons, moderation labels, transcript phrases, picture cues, breaks and the file name — with
//! times. Kept by a consumer of the `catalog` queue ("Asset Completed", "Breaks Edited", see
//! `embeddedOnly` in infra/routing.json). Indexing an asset replaces all its rows in one
//! transaction, so a redelivered event changes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cuepoint_core::asset::{Asset, AssetState};
use cuepoint_core::events::{parse_message, Inbound, PipelineDetail};
use cuepoint_core::rekognition::{CUE_BLACK_FRAMES, CUE_END_CREDITS};
use cuepoint_runtime::consumer::{Consumer, Handler, HandlerError};
use cuepoint_runtime::ports::{Queue, ReceivedMessage};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use utoipa::ToSchema;

use super::insights::{occurrences, phrases, TRANSCRIPT};
use crate::context::WorkerContext;

/// The queue the catalog consumes (infra/routing.json, `embeddedOnly`).
pub const QUEUE: &str = "catalog";
/// Sightings of the same name closer than this are one hit.
const MERGE_GAP_MS: u64 = 2000;

/// What kind of thing a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HitKind {
    Asset,
    Label,
    Person,
    Moderation,
    Transcript,
    Segment,
    Break,
}

impl HitKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Asset => "asset",
            Self::Label => "label",
            Self::Person => "person",
            Self::Moderation => "moderation",
            Self::Transcript => "transcript",
            Self::Segment => "segment",
            Self::Break => "break",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        [
            Self::Asset,
            Self::Label,
            Self::Person,
            Self::Moderation,
            Self::Transcript,
            Self::Segment,
            Self::Break,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One indexed row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub kind: HitKind,
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Hit {
    pub kind: HitKind,
    pub text: String,
    pub start: f64,
    pub end: f64,
    /// The asset page at this time.
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssetHits {
    pub asset_id: String,
    pub name: String,
    pub hits: Vec<Hit>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    pub query: String,
    pub assets: Vec<AssetHits>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("search catalog: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("this SQLite has no FTS5: {0}")]
    NoFts5(String),
}

pub struct Catalog {
    conn: Mutex<Connection>,
}

fn merge_times(times: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &t in times {
        match out.last_mut() {
            Some(last) if t.saturating_sub(last.1) <= MERGE_GAP_MS => last.1 = t,
            _ => out.push((t, t)),
        }
    }
    out
}

/// The display name of an asset: its upload's file name.
pub fn asset_name(asset: &Asset) -> String {
    asset
        .source
        .key
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or(asset.source.key.as_str())
        .to_string()
}

/// Every row for an asset, from its record and results files (by name). Pure.
pub fn rows(asset: &Asset, files: &BTreeMap<&str, Value>) -> Vec<Row> {
    let mut out = Vec::new();
    let name = asset_name(asset);
    // File names split on punctuation too, so "demo-clip.mov" is found by "demo" and "clip".
    let words = name.replace(['-', '_', '.'], " ");
    out.push(Row {
        kind: HitKind::Asset,
        text: format!("{name} {words} {}", asset.id),
        start_ms: 0,
        end_ms: 0,
    });
    let sightings = [
        (
            HitKind::Label,
            cuepoint_core::results::LABELS,
            "Labels",
            "/Label/Name",
            "/Label/Confidence",
            Some("/Label/Parents/0/Name"),
        ),
        (
            HitKind::Person,
            cuepoint_core::results::CELEBRITIES,
            "Celebrities",
            "/Celebrity/Name",
            "/Celebrity/Confidence",
            None,
        ),
        (
            HitKind::Moderation,
            cuepoint_core::results::MODERATION,
            "ModerationLabels",
            "/ModerationLabel/Name",
            "/ModerationLabel/Confidence",
            Some("/ModerationLabel/ParentName"),
        ),
    ];
    for (kind, file, list, name_ptr, conf, parent) in sightings {
        for o in occurrences(files.get(file), list, name_ptr, conf, parent) {
            let text = match &o.parent {
                Some(p) => format!("{} ({p})", o.name),
                None => o.name.clone(),
            };
            for (a, b) in merge_times(&o.times_ms) {
                out.push(Row {
                    kind,
                    text: text.clone(),
                    start_ms: a,
                    end_ms: b,
                });
            }
        }
    }
    for p in phrases(files.get(TRANSCRIPT)) {
        out.push(Row {
            kind: HitKind::Transcript,
            text: p.text,
            start_ms: (p.start * 1000.0) as u64,
            end_ms: (p.end * 1000.0) as u64,
        });
    }
    if let Some(segs) = files
        .get(cuepoint_core::results::SEGMENTS)
        .and_then(|v| v.get("Segments"))
        .and_then(Value::as_array)
    {
        for s in segs {
            let text = match s
                .pointer("/TechnicalCueSegment/Type")
                .and_then(Value::as_str)
            {
                Some(CUE_BLACK_FRAMES) => "black frames",
                Some(CUE_END_CREDITS) => "end credits",
                _ => continue,
            };
            let a = s
                .get("StartTimestampMillis")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let b = s
                .get("EndTimestampMillis")
                .and_then(Value::as_u64)
                .unwrap_or(a);
            out.push(Row {
                kind: HitKind::Segment,
                text: text.into(),
                start_ms: a,
                end_ms: b,
            });
        }
    }
    for b in &asset.breaks {
        let ms = (b.timestamp * 1000.0).round() as u64;
        out.push(Row {
            kind: HitKind::Break,
            text: format!("ad break {}", b.reasons.join(" ")),
            start_ms: ms,
            end_ms: ms,
        });
    }
    out
}

/// The user's words as an FTS5 query: each word a quoted prefix term, all required. Nothing of
/// the FTS5 syntax gets through.
pub fn fts_query(q: &str) -> Option<String> {
    let terms: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| format!("\"{}\"*", w.to_lowercase()))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

impl Catalog {
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    pub fn in_memory() -> Result<Self, CatalogError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, CatalogError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS catalog_assets (
                 asset_id TEXT PRIMARY KEY, name TEXT NOT NULL, record_version INTEGER NOT NULL, indexed_at_ms INTEGER NOT NULL);",
        )?;
        conn.execute_batch(
            "CREATE VIRTUAL TABLE IF NOT EXISTS catalog_hits USING fts5(
                 asset_id UNINDEXED, kind UNINDEXED, text, start_ms UNINDEXED, end_ms UNINDEXED,
                 tokenize = 'unicode61 remove_diacritics 2');",
        )
        .map_err(|e| CatalogError::NoFts5(e.to_string()))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Replace the asset's rows (idempotent).
    pub fn index(&self, asset: &Asset, rows: &[Row], now_ms: u64) -> Result<(), CatalogError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM catalog_hits WHERE asset_id = ?1",
            params![asset.id.as_str()],
        )?;
        {
            let mut ins = tx.prepare(
                "INSERT INTO catalog_hits (asset_id, kind, text, start_ms, end_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for r in rows {
                ins.execute(params![
                    asset.id.as_str(),
                    r.kind.as_str(),
                    r.text,
                    r.start_ms as i64,
                    r.end_ms as i64
                ])?;
            }
        }
        tx.execute(
            "INSERT INTO catalog_assets (asset_id, name, record_version, indexed_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(asset_id) DO UPDATE SET name = excluded.name, record_version = excluded.record_version, indexed_at_ms = excluded.indexed_at_ms",
            params![asset.id.as_str(), asset_name(asset), asset.version as i64, now_ms as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The record version last indexed for an asset.
    pub fn indexed_version(&self, id: &str) -> Result<Option<u64>, CatalogError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut st =
            conn.prepare("SELECT record_version FROM catalog_assets WHERE asset_id = ?1")?;
        let mut rows = st.query(params![id])?;
        Ok(match rows.next()? {
            Some(r) => Some(r.get::<_, i64>(0)? as u64),
            None => None,
        })
    }

    pub fn row_count(&self, id: &str) -> Result<u64, CatalogError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(conn.query_row(
            "SELECT count(*) FROM catalog_hits WHERE asset_id = ?1",
            params![id],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Assets and their time-coded hits, best first (at most `limit` hits in all).
    pub fn search(&self, q: &str, limit: usize) -> Result<SearchResults, CatalogError> {
        let mut results = SearchResults {
            query: q.to_string(),
            assets: Vec::new(),
        };
        let Some(fts) = fts_query(q) else {
            return Ok(results);
        };
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = conn.prepare(
            "SELECT h.asset_id, coalesce(a.name, h.asset_id), h.kind, h.text, h.start_ms, h.end_ms
             FROM catalog_hits h LEFT JOIN catalog_assets a ON a.asset_id = h.asset_id
             WHERE catalog_hits MATCH ?1 ORDER BY rank, h.start_ms LIMIT ?2",
        )?;
        let rows = st.query_map(params![fts, limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        for row in rows {
            let (id, name, kind, text, a, b) = row?;
            let Some(kind) = HitKind::parse(&kind) else {
                continue;
            };
            let start = a as f64 / 1000.0;
            let hit = Hit {
                kind,
                text,
                start,
                end: b as f64 / 1000.0,
                url: format!("/assets/{id}?t={start}"),
            };
            match results.assets.iter_mut().find(|x| x.asset_id == id) {
                Some(x) => x.hits.push(hit),
                None => results.assets.push(AssetHits {
                    asset_id: id,
                    name,
                    hits: vec![hit],
                }),
            }
        }
        Ok(results)
    }
}

/// Whether the catalog holds the asset: COMPLETE, or being packaged again after an edit of
/// its breaks (the edit is what people search for).
fn indexable(asset: &Asset) -> bool {
    asset.state == AssetState::Complete
        || (matches!(asset.state, AssetState::Scored | AssetState::Packaging)
            && (!asset.edits.is_empty() || asset.results.hls_master.is_some()))
}

/// Index one asset from the store and its results (only complete assets are in the catalog).
pub async fn index_asset(
    ctx: &WorkerContext,
    catalog: &Catalog,
    asset: &Asset,
) -> Result<(), HandlerError> {
    if !indexable(asset) {
        return Ok(());
    }
    let mut files: BTreeMap<&str, Value> = BTreeMap::new();
    for rel in [
        cuepoint_core::results::LABELS,
        cuepoint_core::results::CELEBRITIES,
        cuepoint_core::results::MODERATION,
        cuepoint_core::results::SEGMENTS,
        TRANSCRIPT,
    ] {
        if let Some(bytes) = ctx.ports.blobs.get(&ctx.result_uri(&asset.id, rel)).await? {
            if let Ok(v) = serde_json::from_slice(&bytes) {
                files.insert(rel, v);
            }
        }
    }
    let rows = rows(asset, &files);
    let n = rows.len();
    catalog
        .index(asset, &rows, ctx.now_ms())
        .map_err(|e| HandlerError::Transient(e.to_string()))?;
    tracing::info!(asset_id = %asset.id, rows = n, "catalogued");
    Ok(())
}

pub(crate) struct CatalogHandler {
    pub(crate) ctx: WorkerContext,
    pub(crate) catalog: Arc<Catalog>,
}

#[async_trait]
impl Handler for CatalogHandler {
    async fn handle(&self, message: &ReceivedMessage) -> Result<(), HandlerError> {
        let events = parse_message(&message.body).map_err(|e| {
            HandlerError::Permanent(format!("malformed message on queue {QUEUE}: {e}"))
        })?;
        for ev in events {
            match ev {
                Inbound::Pipeline(p)
                    if matches!(
                        p.detail,
                        PipelineDetail::AssetCompleted { .. } | PipelineDetail::BreaksEdited { .. }
                    ) =>
                {
                    // Always the record as it is now: a late or repeated event indexes the latest.
                    match self.ctx.ports.store.get(&p.asset_id).await? {
                        Some(asset) => index_asset(&self.ctx, &self.catalog, &asset).await?,
                        None => {
                            return Err(HandlerError::Permanent(format!(
                                "event for unknown asset {}",
                                p.asset_id
                            )))
                        }
                    }
                }
                Inbound::Ignored { .. } => {}
                other => tracing::debug!(?other, "catalog: event needs no action"),
            }
        }
        Ok(())
    }
}

pub struct CatalogLoop {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl CatalogLoop {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

pub fn start_consumer(
    ctx: &WorkerContext,
    catalog: Arc<Catalog>,
    queue: Arc<dyn Queue>,
) -> CatalogLoop {
    let handler = Arc::new(CatalogHandler {
        ctx: ctx.clone(),
        catalog,
    });
    let mut settings = ctx.settings.consumer.clone();
    // Search should follow the pipeline within a second or two, not a long poll later.
    settings.wait_seconds = settings.wait_seconds.min(1);
    let consumer = Consumer::new(QUEUE, queue, handler, settings);
    let (stop, mut rx) = watch::channel(false);
    let task = tokio::spawn(consumer.run(async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    CatalogLoop { stop, task }
}

/// Index every COMPLETE asset whose record changed since it was last indexed.
pub async fn catch_up(ctx: &WorkerContext, catalog: &Catalog) -> anyhow::Result<usize> {
    let mut n = 0;
    for asset in ctx.ports.store.list().await? {
        if indexable(&asset) && catalog.indexed_version(asset.id.as_str())? != Some(asset.version) {
            index_asset(ctx, catalog, &asset)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn asset() -> Asset {
        let src = cuepoint_core::domain::SourceObject {
            bucket: cuepoint_core::domain::BucketName::parse("ingest").unwrap(),
            key: cuepoint_core::domain::ObjectKey::parse("uploads/harbour-walk.mov").unwrap(),
            version_id: None,
            etag: Some("e".into()),
            size: Some(1),
        };
        let mut a = Asset::register(
            src,
            Default::default(),
            cuepoint_core::domain::S3Uri::parse("s3://out/assets/x/").unwrap(),
            1,
        );
        a.state = AssetState::Complete;
        a
    }

    fn files() -> BTreeMap<&'static str, Value> {
        let mut f = BTreeMap::new();
        f.insert(
            "labels.json",
            json!({"Labels":[
            {"Timestamp":1000,"Label":{"Name":"Golden Retriever","Confidence":91.0}},
            {"Timestamp":2000,"Label":{"Name":"Golden Retriever","Confidence":88.0}},
            {"Timestamp":30000,"Label":{"Name":"Golden Retriever","Confidence":85.0}}]}),
        );
        f.insert(
            "celebrities.json",
            json!({"Celebrities":[{"Timestamp":5000,"Celebrity":{"Name":"Ada Lovelace","Confidence":99.0}}]}),
        );
        f.insert("moderation.json", json!({"ModerationLabels":[{"Timestamp":7000,"ModerationLabel":{"Name":"Violence","ParentName":"","Confidence":60.0}}]}));
        f.insert(
            "transcript.json",
            json!({"results":{"items":[
            {"type":"pronunciation","start_time":"12.5","end_time":"12.9","alternatives":[{"content":"Lighthouse"}]},
            {"type":"pronunciation","start_time":"13.0","end_time":"13.4","alternatives":[{"content":"keepers"}]}]}}),
        );
        f
    }

    #[test]
    fn fts5_is_compiled_in_and_search_finds_every_kind_with_times() {
        let c = Catalog::in_memory().unwrap();
        let a = asset();
        let rows = rows(&a, &files());
        // Two sightings a second apart are one hit; the one 28 s later is another.
        assert_eq!(rows.iter().filter(|r| r.kind == HitKind::Label).count(), 2);
        c.index(&a, &rows, 1).unwrap();
        c.index(&a, &rows, 2).unwrap(); // idempotent
        assert_eq!(c.row_count(a.id.as_str()).unwrap(), rows.len() as u64);
        let r = c.search("golden", 50).unwrap();
        assert_eq!(r.assets.len(), 1);
        assert_eq!(r.assets[0].hits.len(), 2);
        assert_eq!(r.assets[0].hits[0].start, 1.0);
        assert_eq!(r.search_kinds(), ["label", "label"]);
        assert_eq!(c.search("lovelace", 5).unwrap().search_kinds(), ["person"]);
        assert_eq!(
            c.search("violence", 5).unwrap().search_kinds(),
            ["moderation"]
        );
        let t = c.search("lighthouse keep", 5).unwrap();
        assert_eq!(t.search_kinds(), ["transcript"]);
        assert_eq!(t.assets[0].hits[0].url, format!("/assets/{}?t=12.5", a.id));
        assert_eq!(c.search("harbour", 5).unwrap().search_kinds(), ["asset"]);
        assert!(c.search("zebra", 5).unwrap().assets.is_empty());
        // FTS5 syntax in the box is just words.
        assert!(c.search("\"golden\" OR NEAR(x", 5).is_ok());
        assert!(c.search("***", 5).unwrap().assets.is_empty());
    }

    impl SearchResults {
        fn search_kinds(&self) -> Vec<&'static str> {
            self.assets
                .iter()
                .flat_map(|a| a.hits.iter().map(|h| h.kind.as_str()))
                .collect()
        }
    }
}
