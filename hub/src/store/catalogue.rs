//! The matter versions the catalogue sync put in force, and the bank reconciliation reports.
use hub_core::reference::Matter;
use sqlx::Row;

use super::{now_ms, Store};

impl Store {
    /// Keeps a reconciliation report of `day`; every run is kept.
    pub async fn save_reconciliation(&self, day: &str, report: &serde_json::Value) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO reconciliations (day, run_at, report) VALUES ($1, $2, $3)")
            .bind(day)
            .bind(now_ms())
            .bind(report.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The latest reconciliation report of `day`.
    pub async fn latest_reconciliation(&self, day: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT report FROM reconciliations WHERE day = $1 ORDER BY run_at DESC LIMIT 1")
            .bind(day)
            .fetch_optional(&self.reads)
            .await?;
        row.map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).transpose()
    }

    /// Keeps matter versions taken from the provincial platform.
    pub async fn save_matter_versions(&self, matters: &[Matter]) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        for matter in matters {
            sqlx::query(
                "INSERT INTO matter_versions (implementation_code, version, body, synced_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(&matter.implementation_code)
            .bind(i64::from(matter.version))
            .bind(serde_json::to_string(matter)?)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// How many matter versions are kept: a cheap sign that another instance kept one.
    pub async fn matter_version_count(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM matter_versions").fetch_one(&self.reads).await?.get(0))
    }

    /// Every matter version taken from the platform, oldest first.
    pub async fn matter_versions(&self) -> anyhow::Result<Vec<Matter>> {
        let rows = sqlx::query("SELECT body FROM matter_versions ORDER BY implementation_code, version")
            .fetch_all(&self.reads)
            .await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }
}
