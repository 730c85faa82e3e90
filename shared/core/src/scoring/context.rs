//! What Rekognition saw just before and just after a moment: the slot context, shared by both
//! policies. The comparisons follow the reference sample exactly (f64 seconds, not integer
//! milliseconds; a scan in list order that stops at the first result past the window).

use serde::{Deserialize, Serialize};

use super::{ContextEntry, ContextSide, SlotContext};
use crate::rekognition::NamedDetection;
use crate::scoring::ScoringInputs;

/// Window and confidence filter of the context look-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContextParams {
    /// Seconds on each side of the slot.
    pub interval: f64,
    /// Entries under this confidence are dropped (exactly this is kept).
    pub min_confidence: f64,
}

impl Default for ContextParams {
    fn default() -> Self {
        Self {
            interval: super::reference::CONTEXT_INTERVAL_SECONDS,
            min_confidence: super::reference::CONTEXT_MIN_CONFIDENCE,
        }
    }
}

/// Name of the entry a face without emotions gives when [`ContextExtras::bare_faces`] is on.
pub const FACE_ENTRY: &str = "Face";

/// What the default policy counts beyond what the reference sample counts. The local engine's
/// face detector reports no emotions and its labels carry their parents only inside each label,
/// so with the sample's rules faces would never show in the context and a "Tabby Cat" would have
/// nothing in common with a "Tiger Cat".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContextExtras {
    /// A face without emotions gives one entry [`FACE_ENTRY`] at the face's confidence (the
    /// sample: nothing).
    pub bare_faces: bool,
    /// A label's `Parents` count as labels at the label's confidence (Rekognition also lists them
    /// as labels of their own; a name already there keeps its highest confidence).
    pub label_parents: bool,
}

impl ContextExtras {
    /// Everything on: what the default policy uses.
    pub const ALL: ContextExtras = ContextExtras {
        bare_faces: true,
        label_parents: true,
    };
}

/// The context of time `t` (seconds) from the four result lists in `inputs`, by the reference
/// sample's rules.
pub fn context_at(t: f64, inputs: &ScoringInputs, params: &ContextParams) -> SlotContext {
    context_with(t, inputs, params, ContextExtras::default())
}

/// [`context_at`] counting the `extras` too.
pub fn context_with(
    t: f64,
    inputs: &ScoringInputs,
    params: &ContextParams,
    extras: ContextExtras,
) -> SlotContext {
    let celebrities = inputs
        .celebrities
        .as_ref()
        .map(|r| r.celebrities.as_slice())
        .unwrap_or_default();
    let faces = inputs
        .faces
        .as_ref()
        .map(|r| r.faces.as_slice())
        .unwrap_or_default();
    let labels = inputs
        .labels
        .as_ref()
        .map(|r| r.labels.as_slice())
        .unwrap_or_default();
    let moderation = inputs
        .moderation
        .as_ref()
        .map(|r| r.moderation_labels.as_slice())
        .unwrap_or_default();
    SlotContext {
        celebrities: side(
            celebrities,
            t,
            params,
            |c| c.timestamp,
            |c, push| push(&c.celebrity.name, c.celebrity.confidence),
        ),
        // A face gives one entry per emotion; a face without emotions gives nothing (or one
        // "Face" entry with the extras).
        faces: side(
            faces,
            t,
            params,
            |f| f.timestamp,
            |f, push| {
                let emotions = f.face.emotions.as_deref().unwrap_or_default();
                for e in emotions {
                    push(&e.emotion_type, e.confidence);
                }
                if extras.bare_faces && emotions.is_empty() {
                    // A face without a confidence cannot pass the confidence filter.
                    push(FACE_ENTRY, f.face.confidence.unwrap_or(0.0));
                }
            },
        ),
        labels: side(
            labels,
            t,
            params,
            |l| l.timestamp,
            |l, push| {
                push(&l.label.name, l.label.confidence);
                if extras.label_parents {
                    for parent in parent_names(&l.label) {
                        push(parent, l.label.confidence);
                    }
                }
            },
        ),
        moderation: side(
            moderation,
            t,
            params,
            |m| m.timestamp,
            |m, push| push(&m.moderation_label.name, m.moderation_label.confidence),
        ),
    }
}

/// The `Parents[].Name` of a label (Rekognition's shape), in order.
fn parent_names(label: &NamedDetection) -> impl Iterator<Item = &str> {
    label
        .extra
        .get("Parents")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("Name").and_then(|n| n.as_str()))
}

/// Scans `items` in order: results in `[t - interval, t]` go Before, otherwise those in
/// `[t, t + interval]` go After; the scan stops at the first result past `t + interval`
/// (so the lists are expected in timestamp order, as Rekognition returns them).
fn side<T>(
    items: &[T],
    t: f64,
    params: &ContextParams,
    timestamp_ms: impl Fn(&T) -> i64,
    entries: impl Fn(&T, &mut dyn FnMut(&str, f64)),
) -> ContextSide {
    let mut out = ContextSide::default();
    for item in items {
        let ts = timestamp_ms(item) as f64 / 1000.0;
        let target = if t - params.interval <= ts && ts <= t {
            &mut out.before
        } else if t <= ts && ts <= t + params.interval {
            &mut out.after
        } else if ts > t + params.interval {
            break;
        } else {
            continue;
        };
        entries(item, &mut |name, confidence| {
            if confidence >= params.min_confidence {
                keep_highest(target, name, confidence);
            }
        });
    }
    out
}

/// One entry per name: the first with the highest confidence, at the position the name first
/// appeared.
fn keep_highest(list: &mut Vec<ContextEntry>, name: &str, confidence: f64) {
    match list.iter_mut().find(|e| e.name == name) {
        Some(e) if e.confidence < confidence => e.confidence = confidence,
        Some(_) => {}
        None => list.push(ContextEntry {
            name: name.to_string(),
            confidence,
        }),
    }
}
