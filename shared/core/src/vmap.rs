//! VMAP 1.0 with one inline VAST 3.0 ad per break, as the reference sample publishes it
//! (`ad_breaks.vmap`): `vmap:AdBreak` `timeOffset="HH:MM:SS.mmm"`, `breakType="linear"`,
//! `breakId="midroll-N"`; a `vmap:AdSource` (`id="midroll-N-ad-1"`, `allowMultipleAds="false"`,
//! `followRedirects="true"`) with `vmap:VASTAdData` holding an inline ad: `AdSystem`, `AdTitle`
//! `midroll-N-ad-1`, an `Impression`, one Linear creative of 15 s with one progressive
//! 1920x1080 MP4 `MediaFile` (the chosen ad's URL).
//!
//! Written with quick-xml's writer, which escapes attribute values and text. Breaks are numbered
//! in the order given (the reference policy gives score order, the default policy time order).

use std::io::Cursor;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use serde::{Deserialize, Serialize};

use crate::ads::AdInventory;
use crate::scoring::Slot;

pub const VMAP_NAMESPACE: &str = "http://www.iab.net/videosuite/vmap";
pub const VMAP_VERSION: &str = "1.0";
pub const VAST_VERSION: &str = "3.0";
/// Duration of every ad creative.
pub const AD_DURATION: &str = "00:00:15";
pub const AD_SYSTEM: &str = "cuepoint";

/// One break of the VMAP: where, and which ad.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmapBreak {
    /// Seconds from the start of the programme.
    pub timestamp: f64,
    pub ad_url: String,
    /// The slot labels the ad was chosen for.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Jaccard similarity of the ad's labels and `labels`.
    #[serde(default)]
    pub similarity: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VmapError {
    #[error("break {index}: time offset {seconds} s is not a finite number of seconds >= 0")]
    InvalidOffset { index: usize, seconds: f64 },
    #[error("break duration {seconds} s is not a finite number of seconds > 0")]
    InvalidDuration { seconds: f64 },
    #[error("writing the VMAP failed: {0}")]
    Write(String),
}

/// `midroll-N`, N counting from 1.
pub fn break_id(n: usize) -> String {
    format!("midroll-{n}")
}

/// `midroll-N-ad-1`: the ad source, ad title and media file id of break N.
pub fn ad_id(n: usize) -> String {
    format!("midroll-{n}-ad-1")
}

/// Pairs each break with its ad (see [`AdInventory::choose_scored`]), keeping the order.
/// Breaks get no ad only from an empty inventory, which `AdInventory::parse` rejects.
pub fn plan_breaks(breaks: &[Slot], inventory: &AdInventory) -> Vec<VmapBreak> {
    breaks
        .iter()
        .filter_map(|slot| {
            let labels = slot.context.ad_labels();
            let (ad, similarity) = inventory.choose_scored(&labels)?;
            Some(VmapBreak {
                timestamp: slot.timestamp,
                ad_url: ad.url.clone(),
                labels,
                similarity,
            })
        })
        .collect()
}

/// Largest offset accepted (about 31 years): keeps the microsecond arithmetic exact in u64.
const MAX_OFFSET_SECONDS: f64 = 1e9;

/// Whole microseconds in `seconds` as Python's `timedelta(seconds=...)` computes them: the
/// integer part exactly, the fraction times 10^6 in f64, its remainder rounded half to even.
fn timedelta_micros(seconds: f64) -> u64 {
    let whole = seconds.trunc();
    let scaled = (seconds - whole) * 1e6;
    let scaled_whole = scaled.trunc();
    let leftover = scaled - scaled_whole;
    let mut micros = whole as u64 * 1_000_000 + scaled_whole as u64;
    if leftover > 0.5 || (leftover == 0.5 && micros % 2 == 1) {
        micros += 1;
    }
    micros
}

/// `HH:MM:SS.mmm`: the offset rounded to the microsecond, then truncated to milliseconds
/// (1.001 s gives `00:00:01.001`, where `floor(t * 1000)` would give `.000`). Hours keep counting
/// past 24 (the sample's `timedelta.seconds` would wrap to the day).
pub fn time_offset(seconds: f64) -> Option<String> {
    if !(seconds.is_finite() && (0.0..MAX_OFFSET_SECONDS).contains(&seconds)) {
        return None;
    }
    let micros = timedelta_micros(seconds);
    let millis = micros / 1000;
    let (h, rem) = (millis / 3_600_000, millis % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1000, rem % 1000);
    Some(format!("{h:02}:{m:02}:{s:02}.{ms:03}"))
}

/// The VMAP document for `breaks`, in the given order, 2-space indented, UTF-8 declaration.
pub fn build_vmap(breaks: &[VmapBreak]) -> Result<String, VmapError> {
    build_vmap_with_duration(breaks, None)
}

/// `vmap:Extension` type carrying how long each break lasts: VMAP 1.0 has no attribute for it,
/// and its `Extensions` element is where a break says more.
pub const BREAK_DURATION_EXTENSION: &str = "cuepoint-break-duration";

/// [`build_vmap`], each break announcing `break_seconds` (a schedule's break duration) in a
/// `vmap:Extensions` element after its ad source, as `HH:MM:SS.mmm`.
pub fn build_vmap_with_duration(
    breaks: &[VmapBreak],
    break_seconds: Option<f64>,
) -> Result<String, VmapError> {
    let duration = match break_seconds {
        None => None,
        Some(d) => Some(
            time_offset(d)
                .filter(|_| d > 0.0)
                .ok_or(VmapError::InvalidDuration { seconds: d })?,
        ),
    };
    let offsets = breaks
        .iter()
        .enumerate()
        .map(|(index, b)| {
            time_offset(b.timestamp).ok_or(VmapError::InvalidOffset {
                index,
                seconds: b.timestamp,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2);
    let io = |e: std::io::Error| VmapError::Write(e.to_string());
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .map_err(io)?;
    w.create_element("vmap:VMAP")
        .with_attribute(("xmlns:vmap", VMAP_NAMESPACE))
        .with_attribute(("version", VMAP_VERSION))
        .write_inner_content(|w| {
            for (i, (b, offset)) in breaks.iter().zip(&offsets).enumerate() {
                write_break(w, i + 1, offset, &b.ad_url, duration.as_deref())?;
            }
            Ok(())
        })
        .map_err(io)?;
    let mut text = String::from_utf8(w.into_inner().into_inner())
        .map_err(|e| VmapError::Write(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

fn write_break<W: std::io::Write>(
    w: &mut Writer<W>,
    n: usize,
    offset: &str,
    ad_url: &str,
    duration: Option<&str>,
) -> std::io::Result<()> {
    let ad = ad_id(n);
    w.create_element("vmap:AdBreak")
        .with_attribute(("timeOffset", offset))
        .with_attribute(("breakType", "linear"))
        .with_attribute(("breakId", break_id(n).as_str()))
        .write_inner_content(|w| {
            w.create_element("vmap:AdSource")
                .with_attribute(("id", ad.as_str()))
                .with_attribute(("allowMultipleAds", "false"))
                .with_attribute(("followRedirects", "true"))
                .write_inner_content(|w| {
                    w.create_element("vmap:VASTAdData")
                        .write_inner_content(|w| write_vast(w, n, &ad, ad_url))?;
                    Ok(())
                })?;
            if let Some(d) = duration {
                w.create_element("vmap:Extensions")
                    .write_inner_content(|w| {
                        w.create_element("vmap:Extension")
                            .with_attribute(("type", BREAK_DURATION_EXTENSION))
                            .write_inner_content(|w| {
                                w.create_element("Duration")
                                    .write_text_content(BytesText::new(d))?;
                                Ok(())
                            })?;
                        Ok(())
                    })?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_vast<W: std::io::Write>(
    w: &mut Writer<W>,
    n: usize,
    ad: &str,
    ad_url: &str,
) -> std::io::Result<()> {
    w.create_element("VAST")
        .with_attribute(("version", VAST_VERSION))
        .write_inner_content(|w| {
            w.create_element("Ad")
                .with_attribute(("id", n.to_string().as_str()))
                .write_inner_content(|w| {
                    w.create_element("InLine").write_inner_content(|w| {
                        w.create_element("AdSystem")
                            .write_text_content(BytesText::new(AD_SYSTEM))?;
                        w.create_element("AdTitle")
                            .write_text_content(BytesText::new(ad))?;
                        w.create_element("Impression").write_empty()?;
                        w.create_element("Creatives").write_inner_content(|w| {
                            w.create_element("Creative").write_inner_content(|w| {
                                w.create_element("Linear").write_inner_content(|w| {
                                    w.create_element("Duration")
                                        .write_text_content(BytesText::new(AD_DURATION))?;
                                    w.create_element("MediaFiles").write_inner_content(|w| {
                                        w.create_element("MediaFile")
                                            .with_attribute(("id", ad))
                                            .with_attribute(("type", "video/mp4"))
                                            .with_attribute(("delivery", "progressive"))
                                            .with_attribute(("width", "1920"))
                                            .with_attribute(("height", "1080"))
                                            .write_text_content(BytesText::new(ad_url))?;
                                        Ok(())
                                    })?;
                                    Ok(())
                                })?;
                                Ok(())
                            })?;
                            Ok(())
                        })?;
                        Ok(())
                    })?;
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::{ContextEntry, ContextSide, Reason, SlotContext};
    use quick_xml::events::Event;
    use quick_xml::Reader;

    #[test]
    fn time_offsets_round_to_the_microsecond_then_truncate() {
        assert_eq!(time_offset(1.001).unwrap(), "00:00:01.001");
        assert_eq!(
            (1.001f64 * 1000.0).floor(),
            1000.0,
            "the naive rule would say .000"
        );
        assert_eq!(time_offset(0.0).unwrap(), "00:00:00.000");
        assert_eq!(time_offset(3723.5).unwrap(), "01:02:03.500");
        assert_eq!(time_offset(59.9999996).unwrap(), "00:01:00.000");
        assert_eq!(time_offset(59.9999994).unwrap(), "00:00:59.999");
        assert_eq!(time_offset(1234.5675).unwrap(), "00:20:34.567");
        assert_eq!(time_offset(7.0009995).unwrap(), "00:00:07.000");
        assert_eq!(time_offset(90_000.25).unwrap(), "25:00:00.250");
        assert_eq!(time_offset(-0.1), None);
        assert_eq!(time_offset(f64::NAN), None);
        assert_eq!(time_offset(f64::INFINITY), None);
    }

    #[test]
    fn microseconds_match_python_timedelta() {
        // (seconds, whole microseconds of datetime.timedelta(seconds=...)) from CPython 3,
        // including exact halves (round half to even) and values just off a half.
        let cases: &[(f64, u64)] = &[
            (1.001, 1_001_000),
            (0.0015, 1500),
            (2.5e-6, 2),
            (1.5e-6, 2),
            (5e-7, 0),
            (4.0000005, 4_000_000),
            (0.1 + 0.2, 300_000),
            (2331.595906798769, 2331595907),
            (1086.1140522564137, 1086114052),
            (4686.728205886947, 4686728206),
            (521.5412640063079, 521541264),
            (3858.350431008162, 3858350431),
            (2632.960201770616, 2632960202),
            (417.592258377889, 417592258),
            (3653.537278963826, 3653537279),
            (269.96874078229115, 269968741),
            (3122.248922369178, 3122248922),
            (502.95904973725635, 502959050),
            (653.1336960758284, 653133696),
            (55.642, 55642000),
            (7.747, 7747000),
            (74.115, 74115000),
            (16.226, 16226000),
            (29.26, 29260000),
            (82.657, 82657000),
            (82.238, 82238000),
            (76.414, 76414000),
            (8.108, 8108000),
            (0.8319705, 831970),
            (3.7091375, 3709138),
            (0.7815274999999999, 781527),
            (9.339287500000001, 9339288),
            (2.2343025, 2234303),
            (4.8588375, 4858837),
            (7.0319864999999995, 7031986),
            (2.4201985, 2420199),
        ];
        for &(t, micros) in cases {
            assert_eq!(timedelta_micros(t), micros, "t = {t:?}");
        }
    }

    fn golden_breaks() -> Vec<VmapBreak> {
        vec![
            VmapBreak {
                timestamp: 1.001,
                ad_url: "https://ads.example/spot.mp4?a=1&b=<2>".into(),
                labels: vec![],
                similarity: 0.0,
            },
            VmapBreak {
                timestamp: 3723.5,
                ad_url: "https://ads.example/b.mp4".into(),
                labels: vec![],
                similarity: 0.0,
            },
        ]
    }

    const GOLDEN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<vmap:VMAP xmlns:vmap="http://www.iab.net/videosuite/vmap" version="1.0">
  <vmap:AdBreak timeOffset="00:00:01.001" breakType="linear" breakId="midroll-1">
    <vmap:AdSource id="midroll-1-ad-1" allowMultipleAds="false" followRedirects="true">
      <vmap:VASTAdData>
        <VAST version="3.0">
          <Ad id="1">
            <InLine>
              <AdSystem>cuepoint</AdSystem>
              <AdTitle>midroll-1-ad-1</AdTitle>
              <Impression/>
              <Creatives>
                <Creative>
                  <Linear>
                    <Duration>00:00:15</Duration>
                    <MediaFiles>
                      <MediaFile id="midroll-1-ad-1" type="video/mp4" delivery="progressive" width="1920" height="1080">https://ads.example/spot.mp4?a=1&amp;b=&lt;2&gt;</MediaFile>
                    </MediaFiles>
                  </Linear>
                </Creative>
              </Creatives>
            </InLine>
          </Ad>
        </VAST>
      </vmap:VASTAdData>
    </vmap:AdSource>
  </vmap:AdBreak>
  <vmap:AdBreak timeOffset="01:02:03.500" breakType="linear" breakId="midroll-2">
    <vmap:AdSource id="midroll-2-ad-1" allowMultipleAds="false" followRedirects="true">
      <vmap:VASTAdData>
        <VAST version="3.0">
          <Ad id="2">
            <InLine>
              <AdSystem>cuepoint</AdSystem>
              <AdTitle>midroll-2-ad-1</AdTitle>
              <Impression/>
              <Creatives>
                <Creative>
                  <Linear>
                    <Duration>00:00:15</Duration>
                    <MediaFiles>
                      <MediaFile id="midroll-2-ad-1" type="video/mp4" delivery="progressive" width="1920" height="1080">https://ads.example/b.mp4</MediaFile>
                    </MediaFiles>
                  </Linear>
                </Creative>
              </Creatives>
            </InLine>
          </Ad>
        </VAST>
      </vmap:VASTAdData>
    </vmap:AdSource>
  </vmap:AdBreak>
</vmap:VMAP>
"#;

    #[test]
    fn golden_vmap() {
        assert_eq!(build_vmap(&golden_breaks()).unwrap(), GOLDEN);
    }

    #[test]
    fn a_scheduled_break_duration_rides_in_each_break_extensions() {
        let text = build_vmap_with_duration(&golden_breaks(), Some(90.0)).unwrap();
        let ext = "    </vmap:AdSource>\n    <vmap:Extensions>\n      \
            <vmap:Extension type=\"cuepoint-break-duration\">\n        \
            <Duration>00:01:30.000</Duration>\n      </vmap:Extension>\n    \
            </vmap:Extensions>\n  </vmap:AdBreak>";
        assert_eq!(text.matches(ext).count(), 2, "{text}");
        // Nothing else changes.
        let without = ext.replacen("    </vmap:AdSource>\n", "", 1);
        assert_eq!(text.replace(&without, "  </vmap:AdBreak>"), GOLDEN);
        assert_eq!(
            build_vmap_with_duration(&golden_breaks(), None).unwrap(),
            GOLDEN
        );
        for bad in [0.0, -1.0, f64::NAN] {
            assert!(matches!(
                build_vmap_with_duration(&golden_breaks(), Some(bad)),
                Err(VmapError::InvalidDuration { .. })
            ));
        }
    }

    #[test]
    fn empty_vmap_is_well_formed() {
        let text = build_vmap(&[]).unwrap();
        assert_eq!(
            text,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vmap:VMAP xmlns:vmap=\"http://www.iab.net/videosuite/vmap\" version=\"1.0\">\n</vmap:VMAP>\n"
        );
        assert!(parse(&text).breaks.is_empty());
    }

    #[test]
    fn bad_offsets_are_rejected() {
        let mut breaks = golden_breaks();
        breaks[1].timestamp = f64::NAN;
        assert!(matches!(
            build_vmap(&breaks),
            Err(VmapError::InvalidOffset { index: 1, .. })
        ));
    }

    /// What the parse-back test reads from a VMAP document.
    #[derive(Debug, Default)]
    struct Parsed {
        root_ns: Option<String>,
        root_version: Option<String>,
        /// (timeOffset, breakType, breakId, AdSource id, VAST version, AdTitle, Duration, MediaFile url, element path of the MediaFile)
        breaks: Vec<ParsedBreak>,
    }

    #[derive(Debug, Default, Clone)]
    struct ParsedBreak {
        attrs: Vec<(String, String)>,
        source_attrs: Vec<(String, String)>,
        vast_version: String,
        ad_title: String,
        duration: String,
        media_attrs: Vec<(String, String)>,
        media_url: String,
        media_path: Vec<String>,
    }

    fn attrs(e: &quick_xml::events::BytesStart) -> Vec<(String, String)> {
        e.attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.unescape_value().unwrap().into_owned(),
                )
            })
            .collect()
    }

    fn parse(xml: &str) -> Parsed {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().trim_text(true);
        let mut out = Parsed::default();
        let mut path: Vec<String> = Vec::new();
        loop {
            let ev = reader.read_event().unwrap();
            match ev {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                    let a = attrs(e);
                    let get = |k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                    match name.as_str() {
                        "vmap:VMAP" => {
                            out.root_ns = get("xmlns:vmap");
                            out.root_version = get("version");
                        }
                        "vmap:AdBreak" => out.breaks.push(ParsedBreak {
                            attrs: a.clone(),
                            ..Default::default()
                        }),
                        "vmap:AdSource" => out.breaks.last_mut().unwrap().source_attrs = a.clone(),
                        "VAST" => {
                            out.breaks.last_mut().unwrap().vast_version = get("version").unwrap()
                        }
                        "MediaFile" => {
                            let b = out.breaks.last_mut().unwrap();
                            b.media_attrs = a.clone();
                            b.media_path = path.clone();
                        }
                        _ => {}
                    }
                    if matches!(ev, Event::Start(_)) {
                        path.push(name);
                    }
                }
                Event::End(_) => {
                    path.pop();
                }
                Event::Text(t) => {
                    let text = t.unescape().unwrap().into_owned();
                    let b = out.breaks.last_mut().unwrap();
                    match path.last().map(String::as_str) {
                        Some("AdTitle") => b.ad_title = text,
                        Some("Duration") => b.duration = text,
                        Some("MediaFile") => b.media_url = text,
                        _ => {}
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(path.is_empty(), "unbalanced elements: {path:?}");
        out
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn vmap_parses_back_with_the_expected_structure() {
        let breaks = golden_breaks();
        let parsed = parse(&build_vmap(&breaks).unwrap());
        assert_eq!(parsed.root_ns.as_deref(), Some(VMAP_NAMESPACE));
        assert_eq!(parsed.root_version.as_deref(), Some("1.0"));
        assert_eq!(parsed.breaks.len(), 2);
        for (i, (b, want)) in parsed.breaks.iter().zip(&breaks).enumerate() {
            let n = i + 1;
            assert_eq!(
                b.attrs,
                kv(&[
                    ("timeOffset", &time_offset(want.timestamp).unwrap()),
                    ("breakType", "linear"),
                    ("breakId", &format!("midroll-{n}")),
                ])
            );
            assert_eq!(
                b.source_attrs,
                kv(&[
                    ("id", &format!("midroll-{n}-ad-1")),
                    ("allowMultipleAds", "false"),
                    ("followRedirects", "true")
                ])
            );
            assert_eq!(b.vast_version, "3.0");
            assert_eq!(b.ad_title, format!("midroll-{n}-ad-1"));
            assert_eq!(b.duration, "00:00:15");
            // The URL comes back unescaped, exactly.
            assert_eq!(b.media_url, want.ad_url);
            assert_eq!(
                b.media_attrs,
                kv(&[
                    ("id", &format!("midroll-{n}-ad-1")),
                    ("type", "video/mp4"),
                    ("delivery", "progressive"),
                    ("width", "1920"),
                    ("height", "1080"),
                ])
            );
            let want_path = [
                "vmap:VMAP",
                "vmap:AdBreak",
                "vmap:AdSource",
                "vmap:VASTAdData",
                "VAST",
                "Ad",
                "InLine",
                "Creatives",
                "Creative",
                "Linear",
                "MediaFiles",
            ];
            assert_eq!(b.media_path, want_path);
        }
    }

    fn slot(t: f64, before: &[&str], after: &[&str]) -> Slot {
        let entries = |names: &[&str]| {
            names
                .iter()
                .map(|n| ContextEntry {
                    name: n.to_string(),
                    confidence: 90.0,
                })
                .collect()
        };
        Slot {
            timestamp: t,
            score: 0.5,
            reasons: vec![Reason::ShotChange],
            context: SlotContext {
                labels: ContextSide {
                    before: entries(before),
                    after: entries(after),
                },
                ..SlotContext::default()
            },
            snapped_from: None,
            notes: vec![],
            explanation: None,
        }
    }

    #[test]
    fn plan_breaks_chooses_an_ad_per_break_in_order() {
        let inv = AdInventory::default_inventory();
        let breaks = [
            slot(30.0, &["Car", "Person"], &["Asphalt", "Car"]),
            slot(10.0, &["Snow"], &["Skiing", "Mountain"]),
        ];
        let plan = plan_breaks(&breaks, &inv);
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].timestamp, 30.0);
        assert_eq!(plan[0].labels, vec!["Car", "Person", "Asphalt"]);
        assert!(plan[0].ad_url.ends_with("AD-carracing-15.mp4"));
        assert!(plan[1].ad_url.ends_with("AD-skiing-15.mp4"));
        // skiing: 3 of its 12 labels in common with {Snow, Skiing, Mountain}: 3 / 12.
        assert!((plan[1].similarity - 3.0 / 12.0).abs() < 1e-12);
        let xml = build_vmap(&plan).unwrap();
        assert!(xml.contains(r#"timeOffset="00:00:30.000""#));
        assert!(xml.find("AD-carracing").unwrap() < xml.find("AD-skiing").unwrap());
    }
}
