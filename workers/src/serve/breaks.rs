//! Break editing: a person accepts, moves, deletes or adds breaks of a COMPLETE asset. Each save
//! is one `BreaksEdited` transition (conditional write on the record, history kept on it), then
//! a new VMAP version (`vmap/v<N>.vmap`, previous ones kept; `ad_breaks.vmap` is the current one)
//! and a "Breaks Edited" event for downstream consumers (packaging, ad insertion, the catalog).

use cuepoint_core::ads::AdInventory;
use cuepoint_core::asset::{
    transition, Asset, AssetEvent, AssetState, BreakEdit, BreakSummary, Transition, TransitionError,
};
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_core::scoring::{ScoringOutput, Slot};
use cuepoint_core::vmap::{build_vmap, time_offset, VmapBreak};
use cuepoint_runtime::ports::{AssetWrite, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::insights::fetch;
use crate::context::WorkerContext;

/// Reason recorded on a break a person placed or moved.
pub const EDITOR_REASON: &str = "Editor";
/// A typed time this close to a scored slot takes that slot's score and reasons.
const SLOT_MATCH_SECONDS: f64 = 0.5;
/// The ad for a break is chosen from the labels of the nearest slot within this distance.
const AD_CONTEXT_SECONDS: f64 = 5.0;
const MAX_BREAKS: usize = 100;

/// One break as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BreakView {
    pub timestamp: f64,
    /// `HH:MM:SS.mmm`, as in the VMAP.
    pub time_offset: String,
    pub score: f64,
    pub reasons: Vec<String>,
    /// The ad the current VMAP plays there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SlotView {
    pub timestamp: f64,
    pub score: f64,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    pub version: u32,
    pub at_ms: u64,
    pub by: String,
    pub summary: String,
    /// Where that version of the VMAP can be fetched (`/media/<id>/vmap/v<N>.vmap`).
    pub vmap_url: String,
}

/// `GET /api/assets/{id}/breaks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BreaksView {
    pub asset_id: String,
    pub state: String,
    /// Whether a PUT would be accepted now; when not, `refused` says why.
    pub editable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The VMAP version the breaks are in (1: as scored). A PUT names it as `version`.
    pub version: u32,
    pub duration: f64,
    pub breaks: Vec<BreakView>,
    /// Every scored slot (candidates to move a break to).
    pub slots: Vec<SlotView>,
    pub history: Vec<HistoryEntry>,
    pub vmap_url: String,
}

/// One break of an edit.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BreakInput {
    /// Seconds from the start.
    pub timestamp: f64,
    /// Where the break was before, when it was moved (for the history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<f64>,
}

/// `PUT /api/assets/{id}/breaks`: the whole new list of breaks. Accept = the same list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BreaksEdit {
    /// The version the editor saw (`version` of the GET); a newer one makes the PUT a conflict.
    pub version: u32,
    pub breaks: Vec<BreakInput>,
    /// Who edits (shown in the history); `anonymous` when empty.
    #[serde(default)]
    pub editor: Option<String>,
}

fn fmt_t(t: f64) -> String {
    time_offset(t).unwrap_or_else(|| format!("{t}"))
}

/// Why an asset's breaks cannot be edited now, if they cannot.
pub fn refusal(asset: &Asset) -> Option<String> {
    match asset.state {
        // Scored and packaging: the newest edit is what the HLS gets packaged with.
        AssetState::Complete | AssetState::Scored | AssetState::Packaging => None,
        AssetState::Failed => {
            let why =
                asset.failure.as_ref().map(|f| format!(" at stage {}: {}", f.stage, f.reason)).unwrap_or_default();
            Some(format!("asset {} FAILED{why}; it has no breaks to edit", asset.id))
        }
        s => Some(format!(
            "asset {} is {s}: the pipeline is still working on it; breaks can be edited once they are chosen (SCORED)",
            asset.id
        )),
    }
}

async fn scored(ctx: &WorkerContext, asset: &Asset) -> ApiResult<Option<ScoringOutput>> {
    Ok(fetch(ctx, &asset.id, cuepoint_core::results::SLOTS)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// `(timeOffset, MediaFile URL)` per AdBreak of a VMAP document, in order.
pub fn vmap_ads(xml: &str) -> Vec<(String, Option<String>)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let mut in_media = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let name = e.name();
                let local = name.local_name();
                if local.as_ref() == b"AdBreak" {
                    let off = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == b"timeOffset")
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                        .unwrap_or_default();
                    out.push((off, None));
                }
                in_media = local.as_ref() == b"MediaFile";
            }
            Ok(Event::CData(t)) if in_media => {
                if let Some(last) = out.last_mut() {
                    last.1
                        .get_or_insert_with(|| String::from_utf8_lossy(&t).trim().to_string());
                }
            }
            Ok(Event::Text(t)) if in_media => {
                let s = t
                    .unescape()
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default();
                if let (Some(last), false) = (out.last_mut(), s.is_empty()) {
                    last.1.get_or_insert(s);
                }
            }
            Ok(Event::End(_)) => in_media = false,
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

pub async fn view(ctx: &WorkerContext, asset: &Asset) -> ApiResult<BreaksView> {
    let output = scored(ctx, asset).await?;
    let vmap = fetch(ctx, &asset.id, cuepoint_core::results::VMAP)
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let ads = vmap_ads(&vmap);
    let breaks = asset
        .breaks
        .iter()
        .map(|b| {
            let off = fmt_t(b.timestamp);
            let ad_url = ads
                .iter()
                .find(|(o, _)| *o == off)
                .and_then(|(_, u)| u.clone());
            BreakView {
                timestamp: b.timestamp,
                time_offset: off,
                score: b.score,
                reasons: b.reasons.clone(),
                ad_url,
            }
        })
        .collect();
    let slots = output
        .as_ref()
        .map(|o| {
            o.slots
                .iter()
                .map(|s| SlotView {
                    timestamp: s.timestamp,
                    score: s.score,
                    reasons: s.reasons.iter().map(|r| r.to_string()).collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    let duration = asset
        .probe
        .as_ref()
        .map(|p| p.duration_seconds)
        .filter(|d| *d > 0.0)
        .or(output.as_ref().and_then(|o| o.duration))
        .unwrap_or(0.0);
    let refused = refusal(asset);
    Ok(BreaksView {
        asset_id: asset.id.to_string(),
        state: asset.state.to_string(),
        editable: refused.is_none(),
        refused,
        version: asset.vmap_version(),
        duration,
        breaks,
        slots,
        history: asset
            .edits
            .iter()
            .map(|e| HistoryEntry {
                version: e.version,
                at_ms: e.at_ms,
                by: e.by.clone(),
                summary: e.summary.clone(),
                vmap_url: format!("/media/{}/vmap/v{}.vmap", asset.id, e.version),
            })
            .collect(),
        vmap_url: format!("/media/{}/{}", asset.id, cuepoint_core::results::VMAP),
    })
}

/// The editor's name as recorded: printable, trimmed, at most 64 characters.
fn editor_name(given: Option<&str>) -> String {
    let name: String = given
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        "anonymous".into()
    } else {
        name.to_string()
    }
}

/// Check the new list and turn it into breaks (time order) with scores and reasons: a time on a
/// scored slot keeps the slot's; anything else is the editor's. Pure.
pub fn plan(edit: &BreaksEdit, duration: f64, slots: &[Slot]) -> ApiResult<Vec<BreakSummary>> {
    if edit.breaks.len() > MAX_BREAKS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_BREAKS} breaks"
        )));
    }
    let mut times = Vec::new();
    for b in &edit.breaks {
        let t = b.timestamp;
        if !t.is_finite() || t < 0.0 || (duration > 0.0 && t > duration) {
            return Err(ApiError::bad_request(format!(
                "break at {t} s is outside the programme (0 to {duration:.3} s)"
            )));
        }
        times.push(((t * 1000.0).round() / 1000.0, b.from.is_some()));
    }
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in times.windows(2) {
        if w[1].0 - w[0].0 < 1.0 {
            return Err(ApiError::bad_request(format!(
                "breaks at {} and {} are less than 1 s apart",
                fmt_t(w[0].0),
                fmt_t(w[1].0)
            )));
        }
    }
    Ok(times
        .into_iter()
        .map(|(t, _)| {
            match slots
                .iter()
                .find(|s| (s.timestamp - t).abs() <= SLOT_MATCH_SECONDS)
            {
                Some(s) => BreakSummary {
                    timestamp: t,
                    score: s.score,
                    reasons: s.reasons.iter().map(|r| r.to_string()).collect(),
                },
                None => BreakSummary {
                    timestamp: t,
                    score: 0.0,
                    reasons: vec![EDITOR_REASON.into()],
                },
            }
        })
        .collect())
}

/// The history line: what moved, went, came, or that the breaks were accepted as they were.
pub fn summarize(old: &[BreakSummary], edit: &BreaksEdit, new: &[BreakSummary]) -> String {
    let same = |a: f64, b: f64| (a - b).abs() < 0.0005;
    let mut parts = Vec::new();
    let mut moved_from = Vec::new();
    for b in &edit.breaks {
        if let Some(f) = b.from {
            if !same(f, b.timestamp) {
                parts.push(format!("moved {} to {}", fmt_t(f), fmt_t(b.timestamp)));
                moved_from.push(f);
            }
        }
    }
    let deleted: Vec<String> = old
        .iter()
        .filter(|o| {
            !new.iter().any(|n| same(n.timestamp, o.timestamp))
                && !moved_from.iter().any(|f| same(*f, o.timestamp))
        })
        .map(|o| fmt_t(o.timestamp))
        .collect();
    let added: Vec<String> = edit
        .breaks
        .iter()
        .filter(|b| b.from.is_none() && !old.iter().any(|o| same(o.timestamp, b.timestamp)))
        .map(|b| fmt_t(b.timestamp))
        .collect();
    if !deleted.is_empty() {
        parts.push(format!("deleted {}", deleted.join(", ")));
    }
    if !added.is_empty() {
        parts.push(format!("added {}", added.join(", ")));
    }
    if parts.is_empty() {
        format!("accepted {} break(s) as they are", new.len())
    } else {
        parts.join("; ")
    }
}

/// The VMAP for `breaks`: each ad chosen as scoring chooses it, from the labels around the
/// nearest scored slot.
pub fn render_vmap(
    breaks: &[BreakSummary],
    slots: &[Slot],
    inventory: &AdInventory,
) -> Result<String, String> {
    let planned: Vec<VmapBreak> = breaks
        .iter()
        .filter_map(|b| {
            let labels = slots
                .iter()
                .filter(|s| (s.timestamp - b.timestamp).abs() <= AD_CONTEXT_SECONDS)
                .min_by(|x, y| {
                    (x.timestamp - b.timestamp)
                        .abs()
                        .total_cmp(&(y.timestamp - b.timestamp).abs())
                })
                .map(|s| s.context.ad_labels())
                .unwrap_or_default();
            let (ad, similarity) = inventory.choose_scored(&labels)?;
            Some(VmapBreak {
                timestamp: b.timestamp,
                ad_url: ad.url.clone(),
                labels,
                similarity,
            })
        })
        .collect();
    build_vmap(&planned).map_err(|e| e.to_string())
}

/// Save an edit: conditional write first (it decides races between editors), then the VMAP
/// files and the event. Re-running [`publish`] for the latest edit is harmless.
pub async fn save(ctx: &WorkerContext, asset: &Asset, edit: &BreaksEdit) -> ApiResult<Asset> {
    if let Some(why) = refusal(asset) {
        return Err(ApiError::conflict(why));
    }
    if edit.version != asset.vmap_version() {
        let by = asset
            .edits
            .last()
            .map(|e| format!(" by {}", e.by))
            .unwrap_or_default();
        return Err(ApiError::conflict(format!(
            "the breaks changed since you loaded them (now version {}{by}, you edited version {}): reload and edit again",
            asset.vmap_version(),
            edit.version
        )));
    }
    let output = scored(ctx, asset).await?;
    let slots: Vec<Slot> = output.as_ref().map(|o| o.slots.clone()).unwrap_or_default();
    let duration = asset
        .probe
        .as_ref()
        .map(|p| p.duration_seconds)
        .filter(|d| *d > 0.0)
        .or(output.as_ref().and_then(|o| o.duration))
        .unwrap_or(0.0);
    let mut breaks = plan(edit, duration, &slots)?;
    // On the frame grid, like scored breaks: the packaging job cuts a segment at exactly these
    // times and the VMAP names them.
    if let Some(rate) = asset
        .probe
        .as_ref()
        .and_then(|p| p.video.as_ref())
        .and_then(|v| cuepoint_core::packaging::FrameRate::parse(&v.frame_rate_ratio))
    {
        for b in &mut breaks {
            b.timestamp = rate.time_of(rate.frame_at(b.timestamp));
        }
    }
    let version = asset.vmap_version() + 1;
    let record = BreakEdit {
        version,
        at_ms: ctx.now_ms(),
        by: editor_name(edit.editor.as_deref()),
        summary: summarize(&asset.breaks, edit, &breaks),
        breaks,
        vmap: ctx.result_uri(&asset.id, &format!("vmap/v{version}.vmap")),
    };
    let next = match transition(
        asset,
        &AssetEvent::BreaksEdited { edit: record },
        ctx.now_ms(),
    ) {
        Ok(Transition::Applied(next)) => {
            let mut next = *next;
            next.version = asset.version + 1;
            next
        }
        Ok(Transition::AlreadyApplied) => asset.clone(),
        Err(e @ TransitionError::EditVersion { .. }) => {
            return Err(ApiError::conflict(e.to_string()))
        }
        Err(e) => return Err(ApiError::conflict(e.to_string())),
    };
    // The original VMAP (version 1) is kept before the first edit replaces ad_breaks.vmap.
    if version == 2 {
        let v1 = ctx.result_uri(&asset.id, "vmap/v1.vmap");
        if ctx.ports.blobs.head(&v1).await?.is_none() {
            if let Some(original) = fetch(ctx, &asset.id, cuepoint_core::results::VMAP).await? {
                ctx.ports
                    .blobs
                    .put(&v1, original, "application/xml")
                    .await?;
            }
        }
    }
    match ctx
        .ports
        .store
        .commit(AssetWrite {
            asset: next.clone(),
            expected_version: Some(asset.version),
            counter: None,
        })
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict { .. }) => {
            return Err(ApiError::conflict(
                "someone saved these breaks at the same moment: reload and edit again",
            ))
        }
        Err(StoreError::Port(p)) => return Err(p.into()),
        Err(e) => return Err(ApiError::internal(e.to_string())),
    }
    publish(ctx, &next).await?;
    Ok(next)
}

/// Write the latest edit's VMAP (versioned copy and current), the record copy, and announce it.
pub async fn publish(ctx: &WorkerContext, asset: &Asset) -> ApiResult<()> {
    let Some(edit) = asset.edits.last() else {
        return Ok(());
    };
    let output = scored(ctx, asset).await?;
    let slots: Vec<Slot> = output.map(|o| o.slots).unwrap_or_default();
    let xml =
        render_vmap(&edit.breaks, &slots, &ctx.scoring.inventory).map_err(ApiError::internal)?;
    ctx.ports
        .blobs
        .put(&edit.vmap, xml.clone().into_bytes(), "application/xml")
        .await?;
    let current = ctx.result_uri(&asset.id, cuepoint_core::results::VMAP);
    ctx.ports
        .blobs
        .put(&current, xml.into_bytes(), "application/xml")
        .await?;
    crate::flow::write_record(ctx, asset).await;
    let event = PipelineEvent::new(
        asset.id.clone(),
        PipelineDetail::BreaksEdited {
            version: edit.version,
            vmap: current,
            breaks: edit.breaks.len(),
            editor: edit.by.clone(),
        },
    );
    let entry = event.to_entry(Some(ctx.now_ms()));
    ctx.ports.bus.put_events(&[entry]).await?;
    tracing::info!(asset_id = %asset.id, version = edit.version, "breaks edited");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(ts: &[(f64, Option<f64>)]) -> BreaksEdit {
        BreaksEdit {
            version: 1,
            breaks: ts
                .iter()
                .map(|&(timestamp, from)| BreakInput { timestamp, from })
                .collect(),
            editor: None,
        }
    }

    fn b(t: f64) -> BreakSummary {
        BreakSummary {
            timestamp: t,
            score: 0.9,
            reasons: vec!["Silence".into()],
        }
    }

    #[test]
    fn plans_are_checked_and_summarised() {
        assert!(plan(&edit(&[(-1.0, None)]), 60.0, &[]).is_err());
        assert!(plan(&edit(&[(61.0, None)]), 60.0, &[]).is_err());
        assert!(plan(&edit(&[(f64::NAN, None)]), 60.0, &[]).is_err());
        assert!(plan(&edit(&[(10.0, None), (10.5, None)]), 60.0, &[]).is_err());
        let old = [b(22.0), b(42.0)];
        let e = edit(&[(24.0, Some(22.0)), (50.0, None)]);
        let new = plan(&e, 60.0, &[]).unwrap();
        assert_eq!(
            new.iter().map(|b| b.timestamp).collect::<Vec<_>>(),
            [24.0, 50.0]
        );
        assert_eq!(new[0].reasons, ["Editor"]);
        assert_eq!(
            summarize(&old, &e, &new),
            "moved 00:00:22.000 to 00:00:24.000; deleted 00:00:42.000; added 00:00:50.000"
        );
        let same = edit(&[(22.0, None), (42.0, None)]);
        assert_eq!(
            summarize(&old, &same, &plan(&same, 60.0, &[]).unwrap()),
            "accepted 2 break(s) as they are"
        );
    }

    #[test]
    fn vmap_ads_are_read_back() {
        let inv = AdInventory::default_inventory();
        let xml = render_vmap(&[b(22.0), b(42.5)], &[], &inv).unwrap();
        let ads = vmap_ads(&xml);
        assert_eq!(ads.len(), 2);
        assert_eq!(ads[1].0, "00:00:42.500");
        assert!(
            ads[0].1.as_deref().is_some_and(|u| u.ends_with(".mp4")),
            "{ads:?}"
        );
    }

    #[test]
    fn refusals_name_the_state() {
        let src = cuepoint_core::domain::SourceObject {
            bucket: cuepoint_core::domain::BucketName::parse("ingest").unwrap(),
            key: cuepoint_core::domain::ObjectKey::parse("uploads/a.mov").unwrap(),
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
        assert!(refusal(&a).unwrap().contains("still working"));
        a.state = AssetState::Failed;
        a.failure = Some(cuepoint_core::asset::Failure {
            stage: cuepoint_core::asset::FailureStage::Probe,
            reason: "unusable media".into(),
            kind: cuepoint_core::asset::FailureKind::Permanent,
            failed_in: Some(AssetState::Registered),
        });
        assert!(refusal(&a)
            .unwrap()
            .contains("FAILED at stage probe: unusable media"));
        a.state = AssetState::Complete;
        assert!(refusal(&a).is_none());
    }
}
