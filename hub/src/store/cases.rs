//! Cases: snapshots with their optimistic version, looked up by number, request id, state
//! or due deadline timer; case numbers reserved in serial order.
use std::collections::{BTreeMap, HashMap, HashSet};

use hub_core::access::CaseScope;
use hub_core::{Case, CaseState};
use sqlx::Row;

use super::{now_ms, text, HistoryEntry, Param, Params, Store, StoreTx, ROWS_PER_STATEMENT};

/// A case with its history, as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseRecord {
    pub case: Case,
    pub history: Vec<HistoryEntry>,
}

/// Which cases of a list come first, by their last change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListOrder {
    /// Longest waiting first: the work queue.
    #[default]
    Oldest,
    /// Latest changed first: what has just arrived.
    Newest,
}

impl Store {
    /// The case as it stands, without its history: what a check before a command needs.
    pub async fn snapshot(&self, case_number: &str) -> anyhow::Result<Option<Case>> {
        let row = sqlx::query("SELECT snapshot FROM cases WHERE case_number = $1")
            .bind(case_number)
            .fetch_optional(&self.reads)
            .await?;
        row.map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).transpose()
    }

    pub async fn case(&self, case_number: &str) -> anyhow::Result<Option<CaseRecord>> {
        // One read transaction: the snapshot and the history agree.
        let mut read = self.reads.begin().await?;
        let Some(row) = sqlx::query("SELECT snapshot FROM cases WHERE case_number = $1")
            .bind(case_number)
            .fetch_optional(&mut *read)
            .await?
        else {
            return Ok(None);
        };
        let case: Case = serde_json::from_str(row.get::<String, _>(0).as_str())?;
        let rows = sqlx::query("SELECT seq, event_id, kind, occurred_at, recorded_at, body FROM case_events WHERE case_number = $1 ORDER BY seq")
            .bind(case_number)
            .fetch_all(&mut *read)
            .await?;
        let history = rows
            .iter()
            .map(|row| {
                Ok(HistoryEntry {
                    seq: row.get(0),
                    event_id: row.get(1),
                    kind: row.get(2),
                    occurred_at: row.get(3),
                    recorded_at: row.get(4),
                    event: serde_json::from_str(row.get::<String, _>(5).as_str())?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Some(CaseRecord { case, history }))
    }

    /// Cases in `state`, longest waiting first, optionally of one handling department.
    /// Cases in a state within a seat's scope (and one department's, if given), longest
    /// waiting first.
    pub async fn cases_in_state(
        &self,
        state: CaseState,
        department: Option<&str>,
        scope: &CaseScope,
        order: ListOrder,
        limit: i64,
    ) -> anyhow::Result<Vec<Case>> {
        let mut params = Params::new(self.backend);
        let mut sql = format!("SELECT snapshot FROM cases WHERE state = {}", params.next());
        let mut values: Vec<String> = vec![state.as_str().to_string()];
        if let Some(department) = department {
            sql.push_str(&format!(" AND department = {}", params.next()));
            values.push(department.to_string());
        }
        match scope {
            CaseScope::All => {}
            CaseScope::Nothing => return Ok(Vec::new()),
            CaseScope::Of { service_points, authorities } => {
                let mut within = Vec::new();
                for (column, codes) in [("service_point", service_points), ("department", authorities)]
                    .into_iter()
                    .filter(|(_, codes)| !codes.is_empty())
                {
                    within.push(format!("{column} IN ({})", params.list(codes.len())));
                    values.extend(codes.iter().cloned());
                }
                if within.is_empty() {
                    return Ok(Vec::new());
                }
                sql.push_str(&format!(" AND ({})", within.join(" OR ")));
            }
        }
        let direction = match order {
            ListOrder::Oldest => "ASC",
            ListOrder::Newest => "DESC",
        };
        sql.push_str(&format!(" ORDER BY updated_at {direction}, case_number {direction} LIMIT {}", params.next()));
        let mut query = sqlx::query(&sql);
        for value in &values {
            query = query.bind(value);
        }
        let rows = query.bind(limit).fetch_all(&self.reads).await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }

    /// The cases still open, and those changed since `since` (a review comes in after the file
    /// is closed), each with the time of its latest event: what supervision looks at.
    pub async fn cases_under_watch(&self, since: i64) -> anyhow::Result<Vec<(Case, i64)>> {
        let rows = sqlx::query(
            "SELECT c.snapshot, (SELECT MAX(e.occurred_at) FROM case_events e WHERE e.case_number = c.case_number) \
             FROM cases c WHERE c.state <> 'archived' OR c.updated_at >= $1 ORDER BY c.case_number",
        )
        .bind(since)
        .fetch_all(&self.reads)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((serde_json::from_str(row.get::<String, _>(0).as_str())?, row.get::<Option<i64>, _>(1).unwrap_or(0)))
            })
            .collect()
    }

    /// The cases among `case_numbers` that exist, each with the request id that opened it.
    pub async fn cases_with_requests(&self, case_numbers: &[&str]) -> anyhow::Result<Vec<(String, Case)>> {
        let mut cases = Vec::new();
        let unique: Vec<&str> = case_numbers.iter().copied().collect::<HashSet<_>>().into_iter().collect();
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT request_id, snapshot FROM cases WHERE case_number IN ({})",
                Params::new(self.backend).list(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for number in chunk {
                query = query.bind(*number);
            }
            for row in query.fetch_all(&self.reads).await? {
                cases.push((row.get(0), serde_json::from_str(row.get::<String, _>(1).as_str())?));
            }
        }
        Ok(cases)
    }

    /// Cases whose deadline timer is due on or before `day`, earliest first.
    pub async fn cases_with_timer_due(&self, day: i32, limit: i64) -> anyhow::Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT case_number FROM cases WHERE timer_day <= $1 ORDER BY timer_day, case_number LIMIT $2")
                .bind(i64::from(day))
                .bind(limit)
                .fetch_all(&self.reads)
                .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// The numbers of every case in `state`: counting, where a page of snapshots would not do.
    pub async fn case_numbers_in_state(&self, state: CaseState) -> anyhow::Result<Vec<String>> {
        let rows = sqlx::query("SELECT case_number FROM cases WHERE state = $1")
            .bind(state.as_str())
            .fetch_all(&self.reads)
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    pub async fn count_by_state(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM cases GROUP BY state").fetch_all(&self.reads).await?;
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1))).collect())
    }
}

impl StoreTx<'_> {
    /// Reserves `count` case serial numbers; returns the first.
    pub async fn reserve_case_serials(&mut self, count: usize) -> anyhow::Result<i64> {
        let row = sqlx::query("UPDATE counters SET value = value + $1 WHERE name = 'case_serial' RETURNING value")
            .bind(count as i64)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.get::<i64, _>(0) - count as i64 + 1)
    }

    /// The cases already opened for any of these client request ids, by request id.
    pub async fn cases_for_requests(&mut self, request_ids: &[&str]) -> anyhow::Result<HashMap<String, Case>> {
        self.select_cases("request_id", request_ids).await
    }

    /// The cases among `case_numbers` that exist, by number.
    pub async fn load_cases(&mut self, case_numbers: &[&str]) -> anyhow::Result<HashMap<String, Case>> {
        self.select_cases("case_number", case_numbers).await
    }

    async fn select_cases(&mut self, column: &str, keys: &[&str]) -> anyhow::Result<HashMap<String, Case>> {
        let mut cases = HashMap::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT {column}, snapshot FROM cases WHERE {column} IN ({})",
                Params::new(self.store.backend).list(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(*key);
            }
            for row in query.fetch_all(&mut *self.tx).await? {
                let case: Case = serde_json::from_str(row.get::<String, _>(1).as_str())?;
                cases.insert(row.get::<String, _>(0), case);
            }
        }
        Ok(cases)
    }

    /// Inserts new cases, each with the client request id that opened it.
    pub async fn insert_cases(&mut self, cases: &[(&str, &Case)]) -> anyhow::Result<()> {
        let now = now_ms();
        let rows = cases
            .iter()
            .map(|(request_id, case)| {
                Ok(vec![
                    text(&case.case_number),
                    text(request_id),
                    text(case.state.as_str()),
                    Param::Int(i64::from(case.seq)),
                    text(&case.application.service_point.code),
                    Param::MaybeText(case.department_code.clone()),
                    Param::Text(serde_json::to_string(case)?),
                    Param::Int(now),
                    Param::Int(now),
                    Param::MaybeInt(case.timer_day.map(i64::from)),
                ])
            })
            .collect::<anyhow::Result<_>>()?;
        let head = "INSERT INTO cases (case_number, request_id, state, seq, service_point, department, snapshot, created_at, updated_at, timer_day)";
        self.execute_rows(head, "", rows).await
    }

    /// Saves cases, each loaded at the sequence number given with it; fails, and the whole
    /// transaction with it, if any was changed by someone else since.
    pub async fn update_cases(&mut self, cases: &[(&Case, u32)]) -> anyhow::Result<()> {
        let now = now_ms();
        for chunk in cases.chunks(ROWS_PER_STATEMENT) {
            // VALUES columns are column1..column8 on both SQLite and PostgreSQL; the casts give
            // PostgreSQL their types.
            let mut params = Params::new(self.store.backend);
            let rows: Vec<String> = (0..chunk.len())
                .map(|_| {
                    let types = ["TEXT", "BIGINT", "TEXT", "BIGINT", "TEXT", "TEXT", "BIGINT", "BIGINT"];
                    let values: Vec<String> = types.iter().map(|t| format!("CAST({} AS {t})", params.next())).collect();
                    format!("({})", values.join(", "))
                })
                .collect();
            let sql = format!(
                "UPDATE cases SET state = v.column3, seq = v.column4, department = v.column5, snapshot = v.column6, updated_at = v.column7, timer_day = v.column8 \
                 FROM (VALUES {}) AS v WHERE cases.case_number = v.column1 AND cases.seq = v.column2",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for (case, loaded_seq) in chunk {
                query = query
                    .bind(case.case_number.clone())
                    .bind(i64::from(*loaded_seq))
                    .bind(case.state.as_str())
                    .bind(i64::from(case.seq))
                    .bind(case.department_code.clone())
                    .bind(serde_json::to_string(case)?)
                    .bind(now)
                    .bind(case.timer_day.map(i64::from));
            }
            let updated = query.execute(&mut *self.tx).await?.rows_affected();
            if updated != chunk.len() as u64 {
                let numbers: Vec<&str> = chunk.iter().map(|(case, _)| case.case_number.as_str()).collect();
                let changed = chunk.len() as u64 - updated;
                return Err(super::ConcurrentChange(format!(
                    "{changed} of the cases {numbers:?} changed concurrently"
                ))
                .into());
            }
        }
        Ok(())
    }
}
