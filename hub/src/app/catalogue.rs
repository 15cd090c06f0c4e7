//! The matter catalogue, kept in step with the provincial platform: a changed guide becomes a
//! new matter version, kept in the database and put in force everywhere.
use std::sync::Arc;
use std::time::Duration;

use connectors::province::inbound::CatalogueSource;
use connectors::province::protocol::{GuideMaterial, MatterGuide};
use hub_core::reference::{Material, Matter};
use hub_core::Reference;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::reference::CurrentReference;
use crate::store::Store;

/// What one catalogue sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub guides: usize,
    pub unchanged: usize,
    /// Matters that became a new version: code, name, new version.
    pub revised: Vec<(String, String, i32)>,
    /// Guides not taken, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// Synchronises the matter catalogue with the platform's guides: each guide that differs from
/// the newest local version becomes the next version, kept in the database (so cases accepted
/// under it find it after a restart) and put in force. One sync at a time.
pub struct CatalogueSync {
    pub source: CatalogueSource,
    pub store: Store,
    pub reference: CurrentReference,
    pub running: tokio::sync::Mutex<()>,
}

impl CatalogueSync {
    pub async fn run(&self) -> anyhow::Result<SyncReport> {
        let _one_at_a_time = self.running.lock().await;
        let guides =
            self.source.fetch().await.map_err(|error| anyhow::anyhow!("reading the platform's catalogue: {error}"))?;
        // From the newest versions any instance kept, so the next version numbers agree.
        adopt_stored(&self.store, &self.reference).await?;
        let current = self.reference.get();
        let mut report = SyncReport { guides: guides.len(), ..SyncReport::default() };
        let mut candidates = Vec::new();
        for guide in guides {
            match local_matter(&current, guide) {
                Ok(matter) => candidates.push(matter),
                Err(skipped) => report.skipped.push(skipped),
            }
        }
        let mut next = (*current).clone();
        let revised = next.revise(candidates.clone());
        report.unchanged = candidates.len() - revised.len();
        report.revised = revised.iter().map(|m| (m.implementation_code.clone(), m.name.clone(), m.version)).collect();
        if !revised.is_empty() {
            // A version another instance kept first under the same number stays as kept.
            self.store.save_matter_versions(&revised).await?;
            self.reference.replace(next);
            adopt_stored(&self.store, &self.reference).await?;
            tracing::info!(revised = revised.len(), "matter catalogue revised from the provincial platform");
        }
        Ok(report)
    }
}

/// Puts in force the matter versions kept in the database that this instance does not hold
/// yet (another instance took them from the platform); answers whether any were new.
pub async fn adopt_stored(store: &Store, reference: &CurrentReference) -> anyhow::Result<bool> {
    let stored = store.matter_versions().await?;
    let current = reference.get();
    let new: Vec<_> =
        stored.into_iter().filter(|m| current.matter_version(&m.implementation_code, m.version).is_none()).collect();
    if new.is_empty() {
        return Ok(false);
    }
    let mut next = (*current).clone();
    next.restore_versions(new).map_err(anyhow::Error::msg)?;
    reference.replace(next);
    Ok(true)
}

/// Keeps this instance's catalogue in step with the versions kept in the database, looking
/// every `every` until `shutdown` (a count first, so an idle look costs one small query).
pub async fn follow_stored(store: Store, reference: CurrentReference, every: Duration, shutdown: CancellationToken) {
    let mut seen = None;
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let count = match store.matter_version_count().await {
            Ok(count) => count,
            Err(error) => {
                tracing::debug!(error = format!("{error:#}"), "counting the kept matter versions failed");
                continue;
            }
        };
        if seen != Some(count) {
            match adopt_stored(&store, &reference).await {
                Ok(true) => tracing::info!("matter versions kept by another instance put in force"),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "reading the kept matter versions failed");
                    continue;
                }
            }
            seen = Some(count);
        }
    }
}

/// The guide as a local matter: the platform's guide fields on the county's arrangements
/// (accepting and deciding tiers, joint handling, certificate) of the newest version.
fn local_matter(reference: &Reference, guide: MatterGuide) -> Result<Matter, (String, String)> {
    let code = guide.implementation_code.clone();
    let Some(local) = reference.matter(&code) else {
        return Err((code, "not offered in this county: no local arrangement for it".into()));
    };
    if reference.department(&guide.department_code).is_none() {
        return Err((code, format!("implementing department {} is not one of the county's", guide.department_code)));
    }
    Ok(Matter {
        basic_code: guide.basic_code,
        name: guide.name,
        kind: guide.kind,
        department: guide.department_code,
        legal_basis: guide.legal_basis,
        statutory_days: guide.statutory_days,
        promised_days: guide.promised_days,
        instant: guide.instant,
        scope: guide.scope,
        mail_allowed: guide.mail_allowed,
        fees: guide.fees,
        materials: guide
            .materials
            .into_iter()
            .map(|m| Material {
                name: m.name,
                primary: m.primary,
                original: m.original,
                count: m.count,
                ecert: m.ecert,
            })
            .collect(),
        ..local.clone()
    })
}

/// The catalogue as the platform would hold it: the guide fields of each matter's newest version
/// (how the demo and the tests seed the simulator).
pub fn guides_of(reference: &Reference) -> Vec<MatterGuide> {
    reference
        .matters()
        .map(|m| MatterGuide {
            implementation_code: m.implementation_code.clone(),
            basic_code: m.basic_code.clone(),
            name: m.name.clone(),
            kind: m.kind.clone(),
            department_code: m.department.clone(),
            legal_basis: m.legal_basis.clone(),
            statutory_days: m.statutory_days,
            promised_days: m.promised_days,
            instant: m.instant,
            scope: m.scope.clone(),
            mail_allowed: m.mail_allowed,
            fees: m.fees.clone(),
            materials: m
                .materials
                .iter()
                .map(|x| GuideMaterial {
                    name: x.name.clone(),
                    primary: x.primary,
                    original: x.original,
                    count: x.count,
                    ecert: x.ecert,
                })
                .collect(),
            updated_at: 0,
        })
        .collect()
}

/// Synchronises the matter catalogue with the provincial platform every `every` until
/// `shutdown`, the first time at start.
pub async fn sync_every(sync: Arc<CatalogueSync>, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match sync.run().await {
            Ok(report) if !report.revised.is_empty() => {
                tracing::info!(revised = ?report.revised, "matter catalogue synchronised")
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "matter catalogue sync failed; retrying at the next tick")
            }
        }
    }
}
