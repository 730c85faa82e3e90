//! The job ledger of the local media engine: jobs keyed by (service, client token), job ids
//! unique per service.

use std::sync::Arc;

use async_trait::async_trait;
use cuepoint_runtime::ports::{
    JobLedger, LedgerJob, LedgerService, LedgerStatus, PortError, PortResult,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::db::{blocking, Db, SqlResultExt};

pub struct SqliteJobLedger {
    db: Arc<Db>,
}

impl SqliteJobLedger {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

const COLUMNS: &str =
    "service, job_id, client_token, asset_id, request, status, result, created_at_ms";

/// A row as read, before its JSON columns are parsed.
type RawJob = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn to_job(raw: RawJob) -> PortResult<LedgerJob> {
    let (service, job_id, client_token, asset_id, request, status, result, created) = raw;
    let bad = |col: &str, e: serde_json::Error| {
        PortError::Permanent(format!(
            "ledger job {service}/{job_id}: column {col} does not parse: {e}"
        ))
    };
    let unknown = |col: &str, v: &str| {
        PortError::Permanent(format!(
            "ledger job {service}/{job_id}: column {col} holds unknown value {v:?}"
        ))
    };
    let service_v = LedgerService::parse(&service).ok_or_else(|| unknown("service", &service))?;
    let status = LedgerStatus::parse(&status).ok_or_else(|| unknown("status", &status))?;
    let request = serde_json::from_str(&request).map_err(|e| bad("request", e))?;
    let result = result
        .map(|r| serde_json::from_str(&r))
        .transpose()
        .map_err(|e| bad("result", e))?;
    Ok(LedgerJob {
        service: service_v,
        job_id,
        client_token,
        asset_id,
        request,
        status,
        result,
        created_at_ms: created.max(0) as u64,
    })
}

fn query_jobs(
    conn: &Connection,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> PortResult<Vec<LedgerJob>> {
    let rows: Vec<RawJob> = conn
        .prepare_cached(sql)
        .and_then(|mut st| st.query_map(args, raw)?.collect())
        .sql("read ledger jobs")?;
    rows.into_iter().map(to_job).collect()
}

fn json_text(job: &str, col: &str, v: &serde_json::Value) -> PortResult<String> {
    serde_json::to_string(v).map_err(|e| {
        PortError::Permanent(format!("ledger job {job}: {col} does not serialize: {e}"))
    })
}

#[async_trait]
impl JobLedger for SqliteJobLedger {
    async fn create_or_get(&self, job: &LedgerJob) -> PortResult<(LedgerJob, bool)> {
        let job = job.clone();
        self.db
            .write(move |tx| {
                let existing = tx
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM jobs WHERE service = ?1 AND client_token = ?2"
                    ))
                    .and_then(|mut st| {
                        st.query_row(params![job.service.as_str(), job.client_token], raw)
                            .optional()
                    })
                    .sql("find ledger job by token")?;
                if let Some(found) = existing {
                    return Ok((to_job(found)?, false));
                }
                let request = json_text(&job.job_id, "request", &job.request)?;
                let result = job
                    .result
                    .as_ref()
                    .map(|r| json_text(&job.job_id, "result", r))
                    .transpose()?;
                tx.prepare_cached(&format!(
                    "INSERT INTO jobs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ))
                .and_then(|mut st| {
                    st.execute(params![
                        job.service.as_str(),
                        job.job_id,
                        job.client_token,
                        job.asset_id,
                        request,
                        job.status.as_str(),
                        result,
                        job.created_at_ms as i64
                    ])
                })
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        PortError::Permanent(format!(
                            "ledger job id {}/{} is already taken by another client token",
                            job.service, job.job_id
                        ))
                    }
                    _ => crate::db::sql_error("insert ledger job", e),
                })?;
                Ok((job, true))
            })
            .await
    }

    async fn get(&self, service: LedgerService, job_id: &str) -> PortResult<Option<LedgerJob>> {
        let (service, job_id) = (service.as_str(), job_id.to_string());
        blocking(&self.db, move |conn| {
            let sql = format!("SELECT {COLUMNS} FROM jobs WHERE service = ?1 AND job_id = ?2");
            Ok(query_jobs(conn, &sql, &[&service, &job_id])?
                .into_iter()
                .next())
        })
        .await
    }

    async fn find_by_asset(
        &self,
        service: LedgerService,
        asset_id: &str,
    ) -> PortResult<Vec<LedgerJob>> {
        let (service, asset_id) = (service.as_str(), asset_id.to_string());
        blocking(&self.db, move |conn| {
            let sql = format!("SELECT {COLUMNS} FROM jobs WHERE service = ?1 AND asset_id = ?2 ORDER BY created_at_ms, job_id");
            query_jobs(conn, &sql, &[&service, &asset_id])
        })
        .await
    }

    async fn finish(
        &self,
        service: LedgerService,
        job_id: &str,
        status: LedgerStatus,
        result: serde_json::Value,
    ) -> PortResult<()> {
        let (service, job_id, status) = (service.as_str(), job_id.to_string(), status.as_str());
        let result = json_text(&job_id, "result", &result)?;
        self.db
            .write(move |tx| {
                let n = tx
                .prepare_cached(
                    "UPDATE jobs SET status = ?3, result = ?4 WHERE service = ?1 AND job_id = ?2",
                )
                .and_then(|mut st| st.execute(params![service, job_id, status, result]))
                .sql("finish ledger job")?;
                if n == 0 {
                    return Err(PortError::NotFound(format!(
                        "ledger job {service}/{job_id}"
                    )));
                }
                Ok(())
            })
            .await
    }

    async fn unfinished(&self, service: LedgerService) -> PortResult<Vec<LedgerJob>> {
        let service = service.as_str();
        blocking(&self.db, move |conn| {
            let sql = format!("SELECT {COLUMNS} FROM jobs WHERE service = ?1 AND status = ?2 ORDER BY created_at_ms, job_id");
            query_jobs(conn, &sql, &[&service, &LedgerStatus::Submitted.as_str()])
        })
        .await
    }
}
