//! A timeline plot of one asset as SVG (`timeline.svg` in the results): loudness per track,
//! black frames, end credits, shot changes, scenes, every scored slot and the chosen breaks, then what
//! the content analyses saw (speech, faces, the main labels, flagged moments), on one time axis.
//! Where a break sits says more in a picture than in a table.

use std::fmt::Write as _;

use crate::content::{ContentTimeline, Span};
use crate::loudness::LoudnessLog;
use crate::rekognition::{
    SegmentDetection, CUE_BLACK_FRAMES, CUE_DISSOLVE, CUE_END_CREDITS, CUE_FADE_IN, CUE_FADE_OUT,
};
use crate::scenes::SceneResults;
use crate::scoring::Slot;

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;
const TRACK_H: f64 = 28.0;
const LANE_H: f64 = 22.0;
/// Loudness axis: -70 LUFS (bottom) to 0 (top).
const FLOOR_LUFS: f64 = -70.0;

/// What the plot shows.
pub struct TimelineInput<'a> {
    pub title: &'a str,
    pub duration: f64,
    pub loudness: &'a [LoudnessLog],
    pub segments: Option<&'a SegmentDetection>,
    /// Shots grouped into scenes: one bar per scene, alternating shades.
    pub scenes: Option<&'a SceneResults>,
    pub slots: &'a [Slot],
    pub breaks: &'a [Slot],
    /// Speech, faces, labels and moderation on the time axis, one lane each.
    pub content: &'a ContentTimeline,
}

/// The content lanes: a name, a CSS class (for readers of the file), a colour and the spans.
fn content_lanes(c: &ContentTimeline) -> Vec<(String, &'static str, &'static str, &[Span])> {
    let mut lanes = vec![
        (
            "speech".to_string(),
            "speech",
            "#1f9e89",
            c.speech.as_slice(),
        ),
        ("faces".to_string(), "faces", "#e377c2", c.faces.as_slice()),
    ];
    for l in &c.labels {
        lanes.push((l.name.clone(), "label", "#8c6d31", l.spans.as_slice()));
    }
    if !c.moderation.is_empty() {
        lanes.push((
            "moderation".to_string(),
            "moderation",
            "#d62728",
            c.moderation.as_slice(),
        ));
    }
    lanes
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Render the SVG document.
pub fn render_svg(input: &TimelineInput<'_>) -> String {
    let d = if input.duration > 0.0 && input.duration.is_finite() {
        input.duration
    } else {
        1.0
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: f64| LEFT + (t.clamp(0.0, d) / d) * plot_w;
    let tracks = input.loudness.len();
    let lanes_top = 40.0 + tracks as f64 * TRACK_H + 10.0;
    let content = content_lanes(input.content);
    let lane_count = 5 + content.len();
    let height = lanes_top + lane_count as f64 * LANE_H + 40.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(s, r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        esc(input.title)
    );

    // Loudness per track: momentary loudness as a filled area, silent tracks greyed.
    for (i, log) in input.loudness.iter().enumerate() {
        let top = 40.0 + i as f64 * TRACK_H;
        let base = top + TRACK_H - 4.0;
        let y = |lufs: f64| {
            base - ((lufs.max(FLOOR_LUFS) - FLOOR_LUFS) / -FLOOR_LUFS) * (TRACK_H - 6.0)
        };
        let active = log.summary.input_max_loudness > -50.0;
        let colour = if active { "#2b7bb9" } else { "#bbbbbb" };
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">track {}</text>"#,
            LEFT - 6.0,
            base - 6.0,
            i + 1
        );
        let mut path = format!("M{:.1},{base:.1}", x(0.0));
        // At most one point per horizontal pixel keeps the file small for long programmes.
        let step = (log.rows.len() as f64 / plot_w).ceil().max(1.0) as usize;
        for row in log.rows.iter().step_by(step) {
            let _ = write!(path, " L{:.1},{:.1}", x(row.seconds), y(row.momentary));
        }
        let _ = write!(
            path,
            " L{:.1},{base:.1} Z",
            x(log.rows.last().map(|r| r.seconds).unwrap_or(0.0))
        );
        let _ = write!(
            s,
            r#"<path d="{path}" fill="{colour}" fill-opacity="0.6" stroke="none"/>"#
        );
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{base}" x2="{}" y2="{base}" stroke="#ddd"/>"##,
            WIDTH - RIGHT
        );
    }

    // Lanes: picture cues, shots, scenes, slots, breaks.
    let lane = |n: usize| lanes_top + n as f64 * LANE_H;
    for (n, name) in ["picture", "shots", "scenes", "slots", "breaks"]
        .iter()
        .enumerate()
    {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{name}</text>"#,
            LEFT - 6.0,
            lane(n) + 14.0
        );
    }
    if let Some(seg) = input.segments {
        for sgm in &seg.segments {
            let (a, b) = (
                sgm.start_timestamp_millis as f64 / 1000.0,
                sgm.end_timestamp_millis as f64 / 1000.0,
            );
            let fill = match sgm.cue_type() {
                Some(CUE_BLACK_FRAMES) => Some("#222"),
                Some(CUE_END_CREDITS) => Some("#a05fb0"),
                // Fades and dissolves: grey, between picture and black.
                Some(CUE_FADE_OUT | CUE_FADE_IN | CUE_DISSOLVE) => Some("#888"),
                _ => None,
            };
            if let Some(fill) = fill {
                let _ = write!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="16" fill="{fill}"><title>{} {a:.3}-{b:.3} s</title></rect>"#,
                    x(a),
                    lane(0) + 2.0,
                    (x(b) - x(a)).max(1.5),
                    sgm.cue_type().unwrap_or("")
                );
            }
            if sgm.is_shot() {
                let _ = write!(
                    s,
                    r##"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#e08a00"/>"##,
                    x(a),
                    lane(1) + 2.0,
                    lane(1) + 18.0
                );
            }
        }
    }
    for (k, scene) in input
        .scenes
        .map(|r| r.scenes.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let (a, b) = (
            scene.start_timestamp as f64 / 1000.0,
            scene.end_timestamp as f64 / 1000.0,
        );
        let fill = if k % 2 == 0 { "#9ecae1" } else { "#4292c6" };
        let why: Vec<String> = scene.boundary.iter().map(|r| format!("{r:?}")).collect();
        let _ = write!(
            s,
            r#"<rect class="scene" x="{:.1}" y="{:.1}" width="{:.1}" height="16" fill="{fill}"><title>scene {} {a:.3}-{b:.3} s, {} shot(s); starts: {} ({:.0}%)</title></rect>"#,
            x(a),
            lane(2) + 2.0,
            (x(b) - x(a)).max(1.5),
            k + 1,
            scene.shots.len(),
            why.join("+"),
            scene.confidence
        );
    }
    for slot in input.slots {
        let h = 16.0 * slot.score.clamp(0.0, 1.0);
        let reasons: Vec<&str> = slot.reasons.iter().map(|r| r.as_str()).collect();
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="3" height="{h:.1}" fill="#3a9d5d"><title>{:.3} s score {:.3} {}</title></rect>"##,
            x(slot.timestamp) - 1.5,
            lane(3) + 18.0 - h,
            slot.timestamp,
            slot.score,
            reasons.join("+")
        );
    }
    for (i, b) in input.breaks.iter().enumerate() {
        let bx = x(b.timestamp);
        let _ = write!(
            s,
            r##"<path d="M{:.1},{:.1} l6,-10 h-12 z" fill="#d62728"><title>break {} at {:.3} s, score {:.3}{}</title></path>"##,
            bx,
            lane(4) + 16.0,
            i + 1,
            b.timestamp,
            b.score,
            b.explanation
                .as_deref()
                .map(|e| format!(": {}", esc(e)))
                .unwrap_or_default()
        );
        let _ = write!(
            s,
            r##"<line x1="{bx:.1}" y1="40" x2="{bx:.1}" y2="{:.1}" stroke="#d62728" stroke-dasharray="3,3"/>"##,
            lane(4) + 6.0
        );
    }

    // What the content analyses saw: one lane each, a bar per span.
    for (k, (name, class, fill, spans)) in content.iter().enumerate() {
        let n = 5 + k;
        let shown: String = if name.chars().count() > 13 {
            name.chars().take(12).chain(['…']).collect()
        } else {
            name.clone()
        };
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end"><title>{}</title>{}</text>"#,
            LEFT - 6.0,
            lane(n) + 14.0,
            esc(name),
            esc(&shown)
        );
        for span in spans.iter() {
            let _ = write!(
                s,
                r#"<rect class="{class}" x="{:.1}" y="{:.1}" width="{:.1}" height="12" fill="{fill}" fill-opacity="0.8"><title>{} {:.3}-{:.3} s</title></rect>"#,
                x(span.start),
                lane(n) + 4.0,
                (x(span.end) - x(span.start)).max(1.5),
                esc(name),
                span.start,
                span.end
            );
        }
    }

    // Time axis with ticks at a readable interval.
    let axis_y = lane(lane_count) + 6.0;
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#444"/>"##,
        WIDTH - RIGHT
    );
    let tick = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|t| d / t <= 12.0)
    .unwrap_or(7200.0);
    let mut t = 0.0;
    while t <= d + 1e-9 {
        let secs = t as u64;
        let label = format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        );
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" y1="{axis_y}" x2="{0:.1}" y2="{1}" stroke="#444"/>"##,
            x(t),
            axis_y + 4.0
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            x(t),
            axis_y + 16.0
        );
        t += tick;
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loudness::{LoudnessRow, LoudnessSummary};
    use crate::scoring::Reason;

    fn log(active: bool) -> LoudnessLog {
        let level = if active { -20.0 } else { -140.0 };
        LoudnessLog {
            rows: (1..=100)
                .map(|i| LoudnessRow {
                    seconds: i as f64 * 0.1,
                    momentary: level,
                    integrated: level,
                    short_term: level,
                    true_peak: -1.0,
                })
                .collect(),
            summary: LoudnessSummary {
                input_integrated: level,
                input_max_loudness: level,
                input_true_peak: -1.0,
            },
        }
    }

    #[test]
    fn svg_is_well_formed_and_marks_breaks() {
        let slot = Slot {
            timestamp: 4.0,
            score: 0.9,
            reasons: vec![Reason::Silence, Reason::BlackFrame],
            context: Default::default(),
            snapped_from: None,
            notes: vec![],
            explanation: Some("scene change + black at 00:00:04.000 (score 0.90)".into()),
        };
        let scene = |a: u64, b: u64, boundary| crate::scenes::Scene {
            start_timestamp: a,
            end_timestamp: b,
            shots: vec![0],
            confidence: 88.0,
            boundary,
        };
        use crate::scenes::BoundaryReason as B;
        let scenes = SceneResults {
            scenes: vec![
                scene(0, 4000, vec![B::Start]),
                scene(4000, 10_000, vec![B::VisualChange, B::BlackFrames]),
            ],
        };
        let logs = [log(true), log(false)];
        let svg = render_svg(&TimelineInput {
            title: "asset <a&b>",
            duration: 10.0,
            loudness: &logs,
            segments: None,
            scenes: Some(&scenes),
            slots: std::slice::from_ref(&slot),
            breaks: std::slice::from_ref(&slot),
            content: &ContentTimeline::default(),
        });
        let mut reader = quick_xml::Reader::from_str(&svg);
        let mut elements = 0;
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(quick_xml::events::Event::Start(_)) | Ok(quick_xml::events::Event::Empty(_)) => {
                    elements += 1
                }
                Ok(_) => {}
                Err(e) => panic!("not well-formed: {e}\n{svg}"),
            }
        }
        assert!(elements > 20);
        assert!(svg.contains("asset &lt;a&amp;b&gt;"));
        assert!(
            svg.contains("break 1 at 4.000 s, score 0.900: scene change + black at 00:00:04.000")
        );
        let scene_bars: Vec<_> = classed_rects(&svg)
            .into_iter()
            .filter(|r| r.0 == "scene")
            .collect();
        assert_eq!(scene_bars.len(), 2);
        assert!(
            scene_bars[1]
                .3
                .starts_with("scene 2 4.000-10.000 s, 1 shot(s); starts: VisualChange+BlackFrames"),
            "{scene_bars:?}"
        );
        // Scene 2 starts where the break is, 40% across the plot.
        assert!((scene_bars[1].1 - (LEFT + 0.4 * (WIDTH - LEFT - RIGHT))).abs() < 0.1);
        assert!(svg.contains("track 2"));
        assert!(svg.contains("#bbbbbb"), "the silent track is greyed");
    }

    /// Every `<rect>` with a `class`, as (class, x, width, title text), read with an XML parser.
    fn classed_rects(svg: &str) -> Vec<(String, f64, f64, String)> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(svg);
        let mut out = Vec::new();
        let mut open: Option<(String, f64, f64)> = None;
        let mut in_title = false;
        loop {
            match reader.read_event().expect("well-formed SVG") {
                Event::Eof => break,
                Event::Start(e) if e.name().as_ref() == b"rect" => {
                    let attr = |k: &[u8]| {
                        e.try_get_attribute(k)
                            .unwrap()
                            .map(|a| a.unescape_value().unwrap().into_owned())
                    };
                    if let Some(class) = attr(b"class") {
                        let num = |k: &[u8]| attr(k).unwrap().parse::<f64>().unwrap();
                        open = Some((class, num(b"x"), num(b"width")));
                    }
                }
                Event::Start(e) if e.name().as_ref() == b"title" => in_title = true,
                Event::End(e) if e.name().as_ref() == b"title" => in_title = false,
                Event::Text(t) if in_title => {
                    if let Some((class, x, w)) = open.take() {
                        out.push((class, x, w, t.unescape().unwrap().into_owned()));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The text of every `<text>` element.
    fn texts(svg: &str) -> Vec<String> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(svg);
        let (mut out, mut depth) = (Vec::new(), 0);
        loop {
            match reader.read_event().unwrap() {
                Event::Eof => break,
                Event::Start(e) if e.name().as_ref() == b"text" => depth += 1,
                Event::End(e) if e.name().as_ref() == b"text" => depth -= 1,
                Event::Start(e) if e.name().as_ref() == b"title" && depth > 0 => depth += 100,
                Event::End(e) if e.name().as_ref() == b"title" && depth > 100 => depth -= 100,
                Event::Text(t) if depth == 1 => out.push(t.unescape().unwrap().into_owned()),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn svg_shows_speech_faces_labels_and_moderation_on_the_time_axis() {
        use crate::content::{LabelTrack, Span};
        let span = |start, end| Span { start, end };
        let content = ContentTimeline {
            speech: vec![span(10.0, 20.0), span(50.0, 55.0)],
            faces: vec![span(30.0, 30.0)],
            labels: vec![
                LabelTrack {
                    name: "Tabby".into(),
                    samples: 40,
                    spans: vec![span(0.0, 40.0)],
                },
                LabelTrack {
                    name: "Sports Car <GT>".into(),
                    samples: 5,
                    spans: vec![span(60.0, 65.0)],
                },
            ],
            moderation: vec![span(90.0, 91.0)],
        };
        let svg = render_svg(&TimelineInput {
            title: "t",
            duration: 100.0,
            loudness: &[log(true)],
            segments: None,
            scenes: None,
            slots: &[],
            breaks: &[],
            content: &content,
        });
        let rects = classed_rects(&svg);
        let of = |class: &str| -> Vec<(f64, f64, String)> {
            rects
                .iter()
                .filter(|r| r.0 == class)
                .map(|r| (r.1, r.2, r.3.clone()))
                .collect()
        };
        // The plot is 1090 px wide for 100 s: 10.9 px a second from x = 90.
        let px = |t: f64| LEFT + t * (WIDTH - LEFT - RIGHT) / 100.0;
        let speech = of("speech");
        assert_eq!(speech.len(), 2);
        assert!(
            (speech[0].0 - px(10.0)).abs() < 0.06 && (speech[0].1 - 10.0 * 10.9).abs() < 0.11,
            "{speech:?}"
        );
        assert_eq!(speech[1].2, "speech 50.000-55.000 s");
        // A single sample is still visible.
        let faces = of("faces");
        assert_eq!(faces.len(), 1);
        assert!((faces[0].0 - px(30.0)).abs() < 0.06 && faces[0].1 >= 1.5);
        let labels = of("label");
        assert_eq!(
            labels.iter().map(|l| l.2.as_str()).collect::<Vec<_>>(),
            ["Tabby 0.000-40.000 s", "Sports Car <GT> 60.000-65.000 s"]
        );
        assert_eq!(of("moderation").len(), 1);
        // One lane name each, escaped; long names are shortened.
        let names = texts(&svg);
        for lane in ["speech", "faces", "Tabby", "Sports Car <…", "moderation"] {
            assert!(
                names.iter().any(|n| n == lane),
                "no lane {lane:?} in {names:?}"
            );
        }
        // The time axis sits below every lane.
        let axis_labels: Vec<&String> = names.iter().filter(|n| n.starts_with("00:")).collect();
        assert!(axis_labels.len() > 5);
        // Without content analyses there are still speech and faces lanes (empty), nothing else.
        let bare = render_svg(&TimelineInput {
            content: &ContentTimeline::default(),
            ..TimelineInput {
                title: "t",
                duration: 100.0,
                loudness: &[],
                segments: None,
                scenes: None,
                slots: &[],
                breaks: &[],
                content: &content,
            }
        });
        assert!(classed_rects(&bare).is_empty());
        assert!(!texts(&bare).iter().any(|n| n == "moderation"));
    }
}
