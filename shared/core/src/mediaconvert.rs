//! MediaConvert job settings: built from `infra/mediaconvert-job-template.json`, and read back
//! into a [`JobPlan`] so the local media engine can do the same job with FFmpeg.
//!
//! The first job's template has two output groups, found by `Name` (the HLS ladder is made by
//! the packaging job once the breaks are chosen, see [`build_packaging_settings`]):
//! - `Proxy`: a small H.264 MP4 for Rekognition, at `<prefix>proxy/proxy`;
//! - `Audio`: one output holding one AudioDescription per source track, each measuring loudness
//!   (ITU-R BS.1770-2, measure only, logged), at `<prefix>audio/audio`. As in the original
//!   silent-track pipeline, the output also carries a tiny video: MediaConvert allows only one audio description
//!   in an audio-only output, and loudness logs need one description per track.
//!
//! [`build_job_settings`] clones the template's `Audio Selector 1` once per track
//! (`Tracks: [n]`, named `Audio Selector n`) and the Audio group's audio description once per
//! track (`AudioSourceName: Audio Selector n`). MediaConvert then writes one loudness log per
//! description next to the output, named `<destination><nameModifier>_loudness.<n>.csv`, without
//! `.<n>` when the output has a single audio description.

use serde_json::{Map, Value};

use crate::domain::S3Uri;
use crate::events::mediaconvert::{OutputGroupDetail, FILE_GROUP, HLS_GROUP};
use crate::packaging::{ladder_for_source, FrameRate, SegmentPlan};

/// The job template, compiled in.
pub const JOB_TEMPLATE_JSON: &str = include_str!("../../../infra/mediaconvert-job-template.json");

pub const HLS_GROUP_NAME: &str = "HLS";
pub const PROXY_GROUP_NAME: &str = "Proxy";
pub const AUDIO_GROUP_NAME: &str = "Audio";
/// Destinations relative to the asset's output prefix (MediaConvert adds modifier and extension).
pub const HLS_DESTINATION: &str = "hls/index";
pub const PROXY_DESTINATION: &str = "proxy/proxy";
pub const AUDIO_DESTINATION: &str = "audio/audio";
/// Our own sanity bound: mezzanine formats carry at most 64 tracks; a probe claiming more is
/// wrong, and each track costs an input selector and an encode.
pub const MAX_AUDIO_TRACKS: u32 = 128;

const FIRST_SELECTOR: &str = "Audio Selector 1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobSettingsError {
    #[error("job settings: {path} is missing")]
    Missing { path: String },
    #[error("job settings: {path}: {why}")]
    Invalid { path: String, why: String },
    #[error("job settings: {0} audio tracks is more than the {MAX_AUDIO_TRACKS} cuepoint accepts")]
    TooManyTracks(u32),
}

fn missing(path: impl Into<String>) -> JobSettingsError {
    JobSettingsError::Missing { path: path.into() }
}

fn invalid(path: impl Into<String>, why: impl Into<String>) -> JobSettingsError {
    JobSettingsError::Invalid {
        path: path.into(),
        why: why.into(),
    }
}

/// The compiled-in template's `Settings`.
pub fn default_template() -> Value {
    serde_json::from_str(JOB_TEMPLATE_JSON)
        .expect("infra/mediaconvert-job-template.json is valid JSON (tested)")
}

/// `Audio Selector <n>`.
pub fn audio_selector_name(n: u32) -> String {
    format!("Audio Selector {n}")
}

/// The job settings in a template: its `Settings`, or the whole of it when it is settings.
fn settings_of(template: &Value) -> Value {
    match template.get("Settings") {
        Some(s) if template.get("Inputs").is_none() => s.clone(),
        _ => template.clone(),
    }
}

/// `s3://bucket/key/`: an output prefix as a directory, whether or not it ends with `/`.
fn directory_of(output_prefix: &S3Uri) -> String {
    let k = output_prefix.key.as_str();
    let slash = if k.ends_with('/') { "" } else { "/" };
    format!("s3://{}/{k}{slash}", output_prefix.bucket)
}

/// Job `Settings` for one asset: `input` transcoded under `output_prefix` (a "directory": a
/// trailing `/` is implied), measuring loudness on `audio_tracks` tracks. Zero tracks: no audio
/// selectors, no audio in any output, and no Audio group. `template` is a `Settings` object (or
/// a job template with a `Settings` member).
pub fn build_job_settings(
    template: &Value,
    input: &S3Uri,
    output_prefix: &S3Uri,
    audio_tracks: u32,
) -> Result<Value, JobSettingsError> {
    if audio_tracks > MAX_AUDIO_TRACKS {
        return Err(JobSettingsError::TooManyTracks(audio_tracks));
    }
    let mut settings = settings_of(template);
    let prefix = directory_of(output_prefix);

    // Input: the file and one selector per track.
    let input_obj = obj_mut(&mut settings, &["Inputs", "0"])?;
    input_obj.insert("FileInput".into(), Value::String(input.to_string()));
    let selectors = input_obj
        .get("AudioSelectors")
        .and_then(Value::as_object)
        .ok_or_else(|| missing("Inputs[0].AudioSelectors"))?;
    let selector = selectors
        .get(FIRST_SELECTOR)
        .ok_or_else(|| missing(format!("Inputs[0].AudioSelectors.{FIRST_SELECTOR}")))?;
    if !selector.get("Tracks").is_some_and(Value::is_array) {
        return Err(missing(format!(
            "Inputs[0].AudioSelectors.{FIRST_SELECTOR}.Tracks"
        )));
    }
    let selector = selector.clone();
    if audio_tracks == 0 {
        input_obj.remove("AudioSelectors");
    } else {
        let mut out = Map::new();
        for n in 1..=audio_tracks {
            let mut s = selector.clone();
            s["Tracks"] = Value::Array(vec![Value::from(n)]);
            // one default selector per job: the first track's
            if n > 1 && s.get("DefaultSelection").is_some() {
                s["DefaultSelection"] = Value::from("NOT_DEFAULT");
            }
            out.insert(audio_selector_name(n), s);
        }
        input_obj.insert("AudioSelectors".into(), Value::Object(out));
    }

    // Output groups: destinations, and the per-track loudness descriptions.
    let groups = settings
        .get_mut("OutputGroups")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| missing("OutputGroups"))?;
    for name in [PROXY_GROUP_NAME, AUDIO_GROUP_NAME] {
        if !groups.iter().any(|g| group_name(g) == Some(name)) {
            return Err(missing(format!("OutputGroups[Name={name}]")));
        }
    }
    let mut kept = Vec::with_capacity(groups.len());
    for (i, mut g) in std::mem::take(groups).into_iter().enumerate() {
        let name = group_name(&g).unwrap_or("").to_string();
        let at = format!("OutputGroups[{i}]");
        match name.as_str() {
            HLS_GROUP_NAME => {
                set_destination(
                    &mut g,
                    "HlsGroupSettings",
                    format!("{prefix}{HLS_DESTINATION}"),
                    &at,
                )?;
                if audio_tracks == 0 {
                    strip_audio(&mut g);
                }
            }
            PROXY_GROUP_NAME => {
                set_destination(
                    &mut g,
                    "FileGroupSettings",
                    format!("{prefix}{PROXY_DESTINATION}"),
                    &at,
                )?;
                if audio_tracks == 0 {
                    strip_audio(&mut g);
                }
            }
            AUDIO_GROUP_NAME => {
                if audio_tracks == 0 {
                    continue;
                }
                set_destination(
                    &mut g,
                    "FileGroupSettings",
                    format!("{prefix}{AUDIO_DESTINATION}"),
                    &at,
                )?;
                let descs = g
                    .pointer_mut("/Outputs/0/AudioDescriptions")
                    .and_then(Value::as_array_mut)
                    .ok_or_else(|| missing(format!("{at}.Outputs[0].AudioDescriptions")))?;
                let first = descs
                    .first()
                    .cloned()
                    .ok_or_else(|| missing(format!("{at}.Outputs[0].AudioDescriptions[0]")))?;
                *descs = (1..=audio_tracks)
                    .map(|n| {
                        let mut d = first.clone();
                        d["AudioSourceName"] = Value::String(audio_selector_name(n));
                        d
                    })
                    .collect();
            }
            other => {
                return Err(invalid(
                    format!("{at}.Name"),
                    format!("unknown output group {other:?}"),
                ))
            }
        }
        kept.push(g);
    }
    *groups = kept;
    Ok(settings)
}

fn group_name(g: &Value) -> Option<&str> {
    g.get("Name").and_then(Value::as_str)
}

fn obj_mut<'a>(
    v: &'a mut Value,
    path: &[&str],
) -> Result<&'a mut Map<String, Value>, JobSettingsError> {
    let pointer: String = path.iter().map(|p| format!("/{p}")).collect();
    v.pointer_mut(&pointer)
        .and_then(Value::as_object_mut)
        .ok_or_else(|| missing(dotted(path)))
}

fn dotted(path: &[&str]) -> String {
    let mut s = String::new();
    for p in path {
        if p.chars().all(|c| c.is_ascii_digit()) {
            s.push_str(&format!("[{p}]"));
        } else {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(p);
        }
    }
    s
}

fn set_destination(
    g: &mut Value,
    settings_key: &str,
    dest: String,
    at: &str,
) -> Result<(), JobSettingsError> {
    let s = g
        .pointer_mut(&format!("/OutputGroupSettings/{settings_key}"))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| missing(format!("{at}.OutputGroupSettings.{settings_key}")))?;
    s.insert("Destination".into(), Value::String(dest));
    Ok(())
}

fn strip_audio(g: &mut Value) {
    if let Some(outputs) = g.get_mut("Outputs").and_then(Value::as_array_mut) {
        for o in outputs.iter_mut().filter_map(Value::as_object_mut) {
            o.remove("AudioDescriptions");
        }
    }
}

// ---- the inverse: what a job does, for the local engine ----

/// The HLS rendition: `<destination>.m3u8` (multivariant) over `<destination><modifier>.m3u8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsPlan {
    pub destination: S3Uri,
    pub name_modifier: String,
    pub segment_length_s: u32,
    pub min_segment_length_s: u32,
    /// Source track of the rendition's audio (`None`: video only).
    pub audio_track: Option<u32>,
    pub master: S3Uri,
    pub variant: S3Uri,
}

/// The proxy MP4 for video analysis. An absent dimension follows the source aspect ratio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPlan {
    pub destination: S3Uri,
    pub name_modifier: String,
    pub extension: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub output: S3Uri,
}

/// One audio description of the Audio group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrackPlan {
    /// 1-based position in the output (what MediaConvert numbers loudness logs by).
    pub position: u32,
    /// 1-based source track (`Tracks[0]` of its selector).
    pub track: u32,
    pub selector: String,
    pub loudness_logging: bool,
}

/// The loudness-measuring output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPlan {
    pub destination: S3Uri,
    pub name_modifier: String,
    pub extension: String,
    pub tracks: Vec<AudioTrackPlan>,
    pub output: S3Uri,
}

impl AudioPlan {
    /// `<destination><modifier>_loudness.<n>.csv`; no `.<n>` when the output has one track.
    pub fn loudness_log_uri(&self, track: u32, track_count: u32) -> Option<S3Uri> {
        loudness_uri(&self.destination, &self.name_modifier, track, track_count)
    }

    /// The logs MediaConvert writes, one per logged description, in track order.
    pub fn loudness_log_uris(&self) -> Vec<(u32, S3Uri)> {
        let count = self.tracks.len() as u32;
        self.tracks
            .iter()
            .filter(|t| t.loudness_logging)
            .filter_map(|t| {
                self.loudness_log_uri(t.position, count)
                    .map(|u| (t.track, u))
            })
            .collect()
    }
}

fn loudness_uri(dest: &S3Uri, modifier: &str, n: u32, count: u32) -> Option<S3Uri> {
    if n == 0 || n > count {
        return None;
    }
    loudness_uri_unchecked(dest, modifier, n, count).ok()
}

fn loudness_uri_unchecked(
    dest: &S3Uri,
    modifier: &str,
    n: u32,
    count: u32,
) -> Result<S3Uri, crate::domain::DomainError> {
    let suffix = if count == 1 {
        String::new()
    } else {
        format!(".{n}")
    };
    append(dest, &format!("{modifier}_loudness{suffix}.csv"))
}

fn append(u: &S3Uri, tail: &str) -> Result<S3Uri, crate::domain::DomainError> {
    S3Uri::parse(&format!("{u}{tail}"))
}

/// What a job built by [`build_job_settings`] produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPlan {
    pub input: S3Uri,
    /// A single HLS rendition, when the settings ask for one (cuepoint's first job does not:
    /// the ladder comes from the packaging job).
    pub hls: Option<HlsPlan>,
    pub proxy: ProxyPlan,
    /// `None` when the source has no audio track.
    pub audio: Option<AudioPlan>,
}

impl JobPlan {
    pub fn from_settings(settings: &Value) -> Result<JobPlan, JobSettingsError> {
        let input = settings
            .pointer("/Inputs/0")
            .ok_or_else(|| missing("Inputs[0]"))?;
        let file = req_str(input, "FileInput", "Inputs[0]")?;
        let input_uri =
            S3Uri::parse(file).map_err(|e| invalid("Inputs[0].FileInput", e.to_string()))?;

        let selectors = match input.get("AudioSelectors") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(invalid("Inputs[0].AudioSelectors", "expected an object")),
        };
        let track_of = |name: &str, at: &str| -> Result<u32, JobSettingsError> {
            let sel = selectors
                .get(name)
                .ok_or_else(|| invalid(at, format!("names unknown audio selector {name:?}")))?;
            let t = sel
                .pointer("/Tracks/0")
                .and_then(Value::as_u64)
                .ok_or_else(|| missing(format!("Inputs[0].AudioSelectors.{name}.Tracks[0]")))?;
            u32::try_from(t).map_err(|_| {
                invalid(
                    format!("Inputs[0].AudioSelectors.{name}.Tracks[0]"),
                    "out of range",
                )
            })
        };

        let groups = settings
            .get("OutputGroups")
            .and_then(Value::as_array)
            .ok_or_else(|| missing("OutputGroups"))?;
        let find = |name: &str| {
            groups
                .iter()
                .enumerate()
                .find(|(_, g)| group_name(g) == Some(name))
        };

        // HLS (optional)
        let hls = match find(HLS_GROUP_NAME) {
            None => None,
            Some((i, g)) => Some(read_hls_plan(i, g, &track_of)?),
        };

        // Proxy
        let (i, g) = find(PROXY_GROUP_NAME)
            .ok_or_else(|| missing(format!("OutputGroups[Name={PROXY_GROUP_NAME}]")))?;
        let at = format!("OutputGroups[{i}]");
        let fs = group_settings(g, "FILE_GROUP_SETTINGS", "FileGroupSettings", &at)?;
        let destination =
            read_destination(fs, &format!("{at}.OutputGroupSettings.FileGroupSettings"))?;
        let out = first_output(g, &at)?;
        let name_modifier = opt_string(out, "NameModifier", &at)?;
        let extension = read_extension(out, &at)?;
        let video = out
            .get("VideoDescription")
            .ok_or_else(|| missing(format!("{at}.Outputs[0].VideoDescription")))?;
        let vat = format!("{at}.Outputs[0].VideoDescription");
        let proxy = ProxyPlan {
            output: append(&destination, &format!("{name_modifier}.{extension}"))
                .map_err(|e| invalid(&at, e.to_string()))?,
            destination,
            name_modifier,
            extension,
            width: opt_u32(video, "Width", &vat)?,
            height: opt_u32(video, "Height", &vat)?,
        };

        // Audio (absent for sources without audio)
        let audio = match find(AUDIO_GROUP_NAME) {
            None => None,
            Some((i, g)) => {
                let at = format!("OutputGroups[{i}]");
                let fs = group_settings(g, "FILE_GROUP_SETTINGS", "FileGroupSettings", &at)?;
                let destination =
                    read_destination(fs, &format!("{at}.OutputGroupSettings.FileGroupSettings"))?;
                let out = first_output(g, &at)?;
                let name_modifier = opt_string(out, "NameModifier", &at)?;
                let extension = read_extension(out, &at)?;
                let descs = out
                    .get("AudioDescriptions")
                    .and_then(Value::as_array)
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| missing(format!("{at}.Outputs[0].AudioDescriptions")))?;
                let mut tracks = Vec::with_capacity(descs.len());
                for (j, d) in descs.iter().enumerate() {
                    let da = format!("{at}.Outputs[0].AudioDescriptions[{j}]");
                    let selector = req_str(d, "AudioSourceName", &da)?.to_string();
                    let track = track_of(&selector, &format!("{da}.AudioSourceName"))?;
                    let logging = d
                        .pointer("/AudioNormalizationSettings/LoudnessLogging")
                        .and_then(Value::as_str);
                    tracks.push(AudioTrackPlan {
                        position: j as u32 + 1,
                        track,
                        selector,
                        loudness_logging: logging == Some("LOG"),
                    });
                }
                // the longest log name (any position, any count) must still be a valid key
                loudness_uri_unchecked(&destination, &name_modifier, u32::MAX, u32::MAX).map_err(
                    |e| {
                        invalid(
                            format!("{at}.OutputGroupSettings.FileGroupSettings.Destination"),
                            e.to_string(),
                        )
                    },
                )?;
                Some(AudioPlan {
                    output: append(&destination, &format!("{name_modifier}.{extension}"))
                        .map_err(|e| invalid(&at, e.to_string()))?,
                    destination,
                    name_modifier,
                    extension,
                    tracks,
                })
            }
        };
        Ok(JobPlan {
            input: input_uri,
            hls,
            proxy,
            audio,
        })
    }

    /// The multivariant playlist, when the job makes an HLS rendition.
    pub fn hls_master_uri(&self) -> Option<S3Uri> {
        self.hls.as_ref().map(|h| h.master.clone())
    }

    /// The proxy file, `<prefix>proxy/proxy.mp4` for our template.
    pub fn proxy_uri(&self) -> S3Uri {
        self.proxy.output.clone()
    }

    /// The loudness log of the audio description at `track` (1-based) when the output holds
    /// `track_count` of them.
    ///
    /// # Panics
    /// When the plan has no Audio group (settings built for zero tracks): asking for the
    /// loudness log of a source without audio is a caller bug. [`JobPlan::try_loudness_log_uri`]
    /// is the checked form.
    pub fn loudness_log_uri(&self, track: u32, track_count: u32) -> S3Uri {
        let audio = self
            .audio
            .as_ref()
            .expect("loudness_log_uri on a job plan without audio tracks");
        loudness_uri_unchecked(&audio.destination, &audio.name_modifier, track, track_count)
            .expect("from_settings checked that loudness log keys fit")
    }

    /// [`JobPlan::loudness_log_uri`], `None` without an Audio group or for a position outside
    /// `1..=track_count`.
    pub fn try_loudness_log_uri(&self, track: u32, track_count: u32) -> Option<S3Uri> {
        self.audio
            .as_ref()
            .and_then(|a| a.loudness_log_uri(track, track_count))
    }

    /// `(source track, log)` for every logged track; empty without audio.
    pub fn loudness_log_uris(&self) -> Vec<(u32, S3Uri)> {
        self.audio
            .as_ref()
            .map(AudioPlan::loudness_log_uris)
            .unwrap_or_default()
    }

    /// `outputGroupDetails` as MediaConvert reports them for this job on COMPLETE (without
    /// video details): what the local engine announces after doing the job.
    pub fn output_group_details(&self, duration_ms: Option<u64>) -> Vec<OutputGroupDetail> {
        let mut groups: Vec<OutputGroupDetail> = self
            .hls
            .iter()
            .map(|h| OutputGroupDetail {
                output_group_type: Some(HLS_GROUP.into()),
                output_file_paths: vec![h.variant.to_string()],
                playlist_file_paths: vec![h.master.to_string()],
                duration_ms,
                video: None,
            })
            .collect();
        groups.push(OutputGroupDetail {
            output_group_type: Some(FILE_GROUP.into()),
            output_file_paths: vec![self.proxy.output.to_string()],
            duration_ms,
            ..Default::default()
        });
        if let Some(a) = &self.audio {
            groups.push(OutputGroupDetail {
                output_group_type: Some(FILE_GROUP.into()),
                output_file_paths: vec![a.output.to_string()],
                duration_ms,
                ..Default::default()
            });
        }
        groups
    }
}

fn read_hls_plan(
    i: usize,
    g: &Value,
    track_of: &dyn Fn(&str, &str) -> Result<u32, JobSettingsError>,
) -> Result<HlsPlan, JobSettingsError> {
    let at = format!("OutputGroups[{i}]");
    let hs = group_settings(g, "HLS_GROUP_SETTINGS", "HlsGroupSettings", &at)?;
    let hls_at = format!("{at}.OutputGroupSettings.HlsGroupSettings");
    let destination = read_destination(hs, &hls_at)?;
    let segment_length_s = req_u32(hs, "SegmentLength", &hls_at)?;
    let min_segment_length_s = opt_u32(hs, "MinSegmentLength", &hls_at)?.unwrap_or(0);
    let out = first_output(g, &at)?;
    let name_modifier = opt_string(out, "NameModifier", &at)?;
    let audio_track = match out.pointer("/AudioDescriptions/0") {
        None => None,
        Some(d) => {
            let da = format!("{at}.Outputs[0].AudioDescriptions[0]");
            Some(track_of(
                req_str(d, "AudioSourceName", &da)?,
                &format!("{da}.AudioSourceName"),
            )?)
        }
    };
    let uri =
        |tail: &str, at: &str| append(&destination, tail).map_err(|e| invalid(at, e.to_string()));
    Ok(HlsPlan {
        master: uri(".m3u8", &hls_at)?,
        variant: uri(&format!("{name_modifier}.m3u8"), &hls_at)?,
        destination: destination.clone(),
        name_modifier,
        segment_length_s,
        min_segment_length_s,
        audio_track,
    })
}

fn group_settings<'a>(
    g: &'a Value,
    ty: &str,
    key: &str,
    at: &str,
) -> Result<&'a Value, JobSettingsError> {
    let s = g
        .get("OutputGroupSettings")
        .ok_or_else(|| missing(format!("{at}.OutputGroupSettings")))?;
    let found = s.get("Type").and_then(Value::as_str);
    if found != Some(ty) {
        return Err(invalid(
            format!("{at}.OutputGroupSettings.Type"),
            format!("is {found:?}, expected {ty:?}"),
        ));
    }
    s.get(key)
        .ok_or_else(|| missing(format!("{at}.OutputGroupSettings.{key}")))
}

fn read_destination(s: &Value, at: &str) -> Result<S3Uri, JobSettingsError> {
    let d = req_str(s, "Destination", at)?;
    S3Uri::parse(d).map_err(|e| invalid(format!("{at}.Destination"), e.to_string()))
}

fn first_output<'a>(g: &'a Value, at: &str) -> Result<&'a Value, JobSettingsError> {
    g.pointer("/Outputs/0")
        .ok_or_else(|| missing(format!("{at}.Outputs[0]")))
}

fn read_extension(out: &Value, at: &str) -> Result<String, JobSettingsError> {
    // MediaConvert's default extension for the MP4 container
    Ok(opt_str(out, "Extension", &format!("{at}.Outputs[0]"))?.unwrap_or_else(|| "mp4".into()))
}

fn req_str<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a str, JobSettingsError> {
    match v.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(invalid(format!("{at}.{key}"), "is empty")),
        None | Some(Value::Null) => Err(missing(format!("{at}.{key}"))),
        Some(other) => Err(invalid(
            format!("{at}.{key}"),
            format!("is {other}, expected a string"),
        )),
    }
}

fn opt_str(v: &Value, key: &str, at: &str) -> Result<Option<String>, JobSettingsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(
            format!("{at}.{key}"),
            format!("is {other}, expected a string"),
        )),
    }
}

fn opt_string(out: &Value, key: &str, at: &str) -> Result<String, JobSettingsError> {
    Ok(opt_str(out, key, &format!("{at}.Outputs[0]"))?.unwrap_or_default())
}

fn opt_u32(v: &Value, key: &str, at: &str) -> Result<Option<u32>, JobSettingsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    format!("{at}.{key}"),
                    format!("is {n}, expected a non-negative integer"),
                )
            }),
    }
}

fn req_u32(v: &Value, key: &str, at: &str) -> Result<u32, JobSettingsError> {
    opt_u32(v, key, at)?.ok_or_else(|| missing(format!("{at}.{key}")))
}

// ---- the packaging job: the HLS ladder conditioned at the breaks ----

/// The packaging job template, compiled in: one HLS group whose outputs are the ladder's rungs
/// (`NameModifier` `_1080p`...), ESAM settings the breaks are written into.
pub const PACKAGING_TEMPLATE_JSON: &str =
    include_str!("../../../infra/mediaconvert-packaging-template.json");

/// The compiled-in packaging template's `Settings`.
pub fn default_packaging_template() -> Value {
    serde_json::from_str(PACKAGING_TEMPLATE_JSON)
        .expect("infra/mediaconvert-packaging-template.json is valid JSON (tested)")
}

/// `userMetadata.workflow` of packaging jobs: their completion is routed to the packaging
/// worker by it (`infra/routing.json`), the first job's to the media worker.
pub fn packaging_workflow(workflow: &str) -> String {
    format!("{workflow}-packaging")
}

/// ESAM acquisition point cuepoint's signals name.
const ACQUISITION_POINT: &str = "cuepoint";

/// What the packaging settings need to know about the source (as displayed: rotation applied).
#[derive(Debug, Clone, PartialEq)]
pub struct PackagingSource {
    pub width: u32,
    pub height: u32,
    pub frame_rate: FrameRate,
    pub duration_s: f64,
    /// The source track muxed into every rendition (`None`: no audio).
    pub audio_track: Option<u32>,
}

/// An ESAM SignalProcessingNotification with one insertion point (NPT seconds on the output
/// timeline) per break: MediaConvert conditions every output with an IDR frame there and, in
/// HLS/TS outputs, inserts a SCTE-35 message.
pub fn signal_processing_xml(breaks: &[f64]) -> String {
    let mut x = String::from(
        "<SignalProcessingNotification xmlns=\"urn:cablelabs:iptvservices:esam:xsd:signal:1\" xmlns:sig=\"urn:cablelabs:md:xsd:signaling:3.0\">",
    );
    for (i, t) in breaks.iter().enumerate() {
        let n = i + 1;
        x.push_str(&format!(
            "<ResponseSignal action=\"create\" acquisitionPointIdentity=\"{ACQUISITION_POINT}\" acquisitionSignalID=\"break-{n}\" signalPointID=\"break-{n}\"><sig:NPTPoint nptPoint=\"{t:.6}\"/><sig:SCTE35PointDescriptor spliceCommandType=\"5\"/></ResponseSignal>"
        ));
    }
    x.push_str("</SignalProcessingNotification>");
    x
}

/// An ESAM ManifestConfirmConditionNotification: the HLS cue tags MediaConvert writes on the
/// segment that starts each signalled break (an insertion point: `CUE-OUT:0` then `CUE-IN`).
pub fn manifest_conditioning_xml(breaks: &[f64]) -> String {
    let mut x = String::from(
        "<ManifestConfirmConditionNotification xmlns=\"urn:cablelabs:iptvservices:esam:xsd:manifest:1\">",
    );
    for n in 1..=breaks.len() {
        x.push_str(&format!(
            "<ManifestResponse acquisitionPointIdentity=\"{ACQUISITION_POINT}\" acquisitionSignalID=\"break-{n}\"><SegmentModify><FirstSegment><Tag value=\"#EXT-X-CUE-OUT:0\"/><Tag value=\"#EXT-X-CUE-IN\"/></FirstSegment></SegmentModify></ManifestResponse>"
        ));
    }
    x.push_str("</ManifestConfirmConditionNotification>");
    x
}

/// The insertion points of a SignalProcessingNotification written by
/// [`signal_processing_xml`], seconds, in document order.
pub fn read_signal_points(xml: &str) -> Result<Vec<f64>, JobSettingsError> {
    const AT: &str = "Esam.SignalProcessingNotification.SccXml";
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("nptPoint=\"") {
        rest = &rest[i + "nptPoint=\"".len()..];
        let end = rest
            .find('"')
            .ok_or_else(|| invalid(AT, "unterminated nptPoint"))?;
        let t: f64 = rest[..end]
            .trim()
            .parse()
            .ok()
            .filter(|t: &f64| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| invalid(AT, format!("nptPoint {:?} is not seconds", &rest[..end])))?;
        out.push(t);
        rest = &rest[end..];
    }
    Ok(out)
}

/// Job `Settings` of the packaging job: `input` encoded into the HLS ladder under
/// `<output_prefix>hls/`, rungs of `ladder` (shorter side in pixels) no larger than the source,
/// every rendition with a key frame and a segment boundary at each break (the breaks are put
/// on the frame grid first), announced as ESAM insertion points.
pub fn build_packaging_settings(
    template: &Value,
    input: &S3Uri,
    output_prefix: &S3Uri,
    source: &PackagingSource,
    ladder: &[u32],
    breaks: &[f64],
) -> Result<Value, JobSettingsError> {
    let mut settings = settings_of(template);
    let prefix = directory_of(output_prefix);
    let input_obj = obj_mut(&mut settings, &["Inputs", "0"])?;
    input_obj.insert("FileInput".into(), Value::String(input.to_string()));
    match source.audio_track {
        Some(t) => {
            let sel = input_obj
                .get_mut("AudioSelectors")
                .and_then(|s| s.get_mut(FIRST_SELECTOR))
                .ok_or_else(|| missing(format!("Inputs[0].AudioSelectors.{FIRST_SELECTOR}")))?;
            sel["Tracks"] = Value::Array(vec![Value::from(t)]);
        }
        None => {
            input_obj.remove("AudioSelectors");
        }
    }

    let segment_seconds = settings
        .pointer("/OutputGroups/0/OutputGroupSettings/HlsGroupSettings/SegmentLength")
        .and_then(Value::as_u64)
        .unwrap_or(6) as f64;
    let plan = SegmentPlan::new(
        source.duration_s,
        source.frame_rate,
        segment_seconds,
        breaks,
    );
    let points = plan.break_times();
    let esam = obj_mut(&mut settings, &["Esam"])?;
    esam.insert(
        "SignalProcessingNotification".into(),
        serde_json::json!({ "SccXml": signal_processing_xml(&points) }),
    );
    esam.insert(
        "ManifestConfirmConditionNotification".into(),
        serde_json::json!({ "MccXml": manifest_conditioning_xml(&points) }),
    );

    let groups = settings
        .get_mut("OutputGroups")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| missing("OutputGroups"))?;
    let g = groups
        .iter_mut()
        .find(|g| group_name(g) == Some(HLS_GROUP_NAME))
        .ok_or_else(|| missing(format!("OutputGroups[Name={HLS_GROUP_NAME}]")))?;
    set_destination(
        g,
        "HlsGroupSettings",
        format!("{prefix}{HLS_DESTINATION}"),
        "OutputGroups[HLS]",
    )?;
    let outputs = g
        .get("Outputs")
        .and_then(Value::as_array)
        .filter(|o| !o.is_empty())
        .ok_or_else(|| missing("OutputGroups[HLS].Outputs"))?
        .clone();
    let rungs = ladder_for_source(ladder, source.width, source.height);
    let mut made = Vec::with_capacity(rungs.len());
    for r in rungs {
        let modifier = format!("_{}", r.name);
        let mut o = outputs
            .iter()
            .find(|o| o.get("NameModifier").and_then(Value::as_str) == Some(modifier.as_str()))
            .or_else(|| outputs.last())
            .cloned()
            .unwrap_or(Value::Null);
        o["NameModifier"] = Value::String(modifier);
        let v = o
            .get_mut("VideoDescription")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| missing("OutputGroups[HLS].Outputs[0].VideoDescription"))?;
        v.insert("Width".into(), Value::from(r.width));
        v.insert("Height".into(), Value::from(r.height));
        if source.audio_track.is_none() {
            if let Some(m) = o.as_object_mut() {
                m.remove("AudioDescriptions");
            }
        }
        made.push(o);
    }
    g["Outputs"] = Value::Array(made);
    Ok(settings)
}

/// One rendition of the packaging job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionPlan {
    pub name_modifier: String,
    pub width: u32,
    pub height: u32,
    /// `MaxBitrate` of the rung (bits/s), the encoder's cap.
    pub max_bitrate: Option<u32>,
    pub audio_track: Option<u32>,
    /// `<destination><modifier>.m3u8`.
    pub playlist: S3Uri,
}

/// What a packaging job produces: the ladder under one master playlist, conditioned at `breaks`.
#[derive(Debug, Clone, PartialEq)]
pub struct PackagingPlan {
    pub input: S3Uri,
    pub destination: S3Uri,
    pub master: S3Uri,
    pub segment_length_s: u32,
    pub renditions: Vec<RenditionPlan>,
    /// Insertion points from the ESAM signal, seconds.
    pub breaks: Vec<f64>,
}

impl PackagingPlan {
    pub fn from_settings(settings: &Value) -> Result<PackagingPlan, JobSettingsError> {
        let input = settings
            .pointer("/Inputs/0")
            .ok_or_else(|| missing("Inputs[0]"))?;
        let file = req_str(input, "FileInput", "Inputs[0]")?;
        let input_uri =
            S3Uri::parse(file).map_err(|e| invalid("Inputs[0].FileInput", e.to_string()))?;
        let track = match input.pointer(&format!("/AudioSelectors/{FIRST_SELECTOR}/Tracks/0")) {
            None => None,
            Some(t) => Some(
                t.as_u64()
                    .and_then(|t| u32::try_from(t).ok())
                    .ok_or_else(|| invalid("Inputs[0].AudioSelectors", "bad track"))?,
            ),
        };
        let scc = settings
            .pointer("/Esam/SignalProcessingNotification/SccXml")
            .and_then(Value::as_str)
            .unwrap_or("");
        let breaks = read_signal_points(scc)?;
        let groups = settings
            .get("OutputGroups")
            .and_then(Value::as_array)
            .ok_or_else(|| missing("OutputGroups"))?;
        let (i, g) = groups
            .iter()
            .enumerate()
            .find(|(_, g)| group_name(g) == Some(HLS_GROUP_NAME))
            .ok_or_else(|| missing(format!("OutputGroups[Name={HLS_GROUP_NAME}]")))?;
        let at = format!("OutputGroups[{i}]");
        let hs = group_settings(g, "HLS_GROUP_SETTINGS", "HlsGroupSettings", &at)?;
        let hls_at = format!("{at}.OutputGroupSettings.HlsGroupSettings");
        let destination = read_destination(hs, &hls_at)?;
        let segment_length_s = req_u32(hs, "SegmentLength", &hls_at)?;
        let outputs = g
            .get("Outputs")
            .and_then(Value::as_array)
            .filter(|o| !o.is_empty())
            .ok_or_else(|| missing(format!("{at}.Outputs")))?;
        let mut renditions = Vec::with_capacity(outputs.len());
        for (j, o) in outputs.iter().enumerate() {
            let oat = format!("{at}.Outputs[{j}]");
            let name_modifier = opt_str(o, "NameModifier", &oat)?.unwrap_or_default();
            let v = o
                .get("VideoDescription")
                .ok_or_else(|| missing(format!("{oat}.VideoDescription")))?;
            let vat = format!("{oat}.VideoDescription");
            let width = req_u32(v, "Width", &vat)?;
            let height = req_u32(v, "Height", &vat)?;
            if width < 16 || height < 16 || width % 2 == 1 || height % 2 == 1 {
                return Err(invalid(
                    &vat,
                    "width and height must be even and at least 16",
                ));
            }
            let max_bitrate = v
                .pointer("/CodecSettings/H264Settings/MaxBitrate")
                .and_then(Value::as_u64)
                .and_then(|b| u32::try_from(b).ok());
            let audio_track = if o.pointer("/AudioDescriptions/0").is_some() {
                Some(track.ok_or_else(|| {
                    invalid(format!("{oat}.AudioDescriptions"), "no audio selector")
                })?)
            } else {
                None
            };
            renditions.push(RenditionPlan {
                playlist: append(&destination, &format!("{name_modifier}.m3u8"))
                    .map_err(|e| invalid(&oat, e.to_string()))?,
                name_modifier,
                width,
                height,
                max_bitrate,
                audio_track,
            });
        }
        if renditions.iter().enumerate().any(|(k, r)| {
            renditions[..k]
                .iter()
                .any(|o| o.name_modifier == r.name_modifier)
        }) {
            return Err(invalid(
                format!("{at}.Outputs"),
                "two outputs share a NameModifier",
            ));
        }
        Ok(PackagingPlan {
            master: append(&destination, ".m3u8").map_err(|e| invalid(&hls_at, e.to_string()))?,
            input: input_uri,
            destination,
            segment_length_s,
            renditions,
            breaks,
        })
    }

    /// `outputGroupDetails` as MediaConvert reports them for this job on COMPLETE.
    pub fn output_group_details(&self, duration_ms: Option<u64>) -> Vec<OutputGroupDetail> {
        vec![OutputGroupDetail {
            output_group_type: Some(HLS_GROUP.into()),
            output_file_paths: self
                .renditions
                .iter()
                .map(|r| r.playlist.to_string())
                .collect(),
            playlist_file_paths: vec![self.master.to_string()],
            duration_ms,
            video: None,
        }]
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input() -> S3Uri {
        S3Uri::parse("s3://cuepoint-ingest/masters/My Show (1).mxf").unwrap()
    }

    fn prefix() -> S3Uri {
        S3Uri::parse("s3://cuepoint-media/assets/a0123456789abcdef0123/").unwrap()
    }

    fn build(tracks: u32) -> Value {
        build_job_settings(&default_template(), &input(), &prefix(), tracks).unwrap()
    }

    const P: &str = "s3://cuepoint-media/assets/a0123456789abcdef0123/";

    #[test]
    fn template_is_what_the_builder_expects() {
        let t = default_template();
        let names: Vec<&str> = t["OutputGroups"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(group_name)
            .collect();
        assert_eq!(names, ["Proxy", "Audio"]);
        assert_eq!(
            t["Inputs"][0]["AudioSelectors"]["Audio Selector 1"]["Tracks"],
            json!([1])
        );
        let p = default_packaging_template();
        assert_eq!(p["OutputGroups"][0]["Name"], "HLS");
        assert_eq!(
            p["OutputGroups"][0]["Outputs"].as_array().unwrap().len(),
            crate::packaging::DEFAULT_LADDER.len()
        );
        assert_eq!(
            p["OutputGroups"][0]["OutputGroupSettings"]["HlsGroupSettings"]["SegmentLength"],
            6
        );
        assert_eq!(
            t["OutputGroups"][1]["Outputs"][0]["AudioDescriptions"][0]
                ["AudioNormalizationSettings"],
            json!({"Algorithm": "ITU_BS_1770_2", "AlgorithmControl": "MEASURE_ONLY", "LoudnessLogging": "LOG", "PeakCalculation": "NONE"})
        );
        // the unbuilt template names no input
        assert_eq!(
            JobPlan::from_settings(&t).unwrap_err(),
            JobSettingsError::Invalid {
                path: "Inputs[0].FileInput".into(),
                why: "is empty".into()
            }
        );
    }

    #[test]
    fn golden_settings_for_two_tracks() {
        let aac = json!({"Codec": "AAC", "AacSettings": {"Bitrate": 96000, "CodingMode": "CODING_MODE_2_0", "SampleRate": 48000}});
        let loudness = |n: u32| {
            json!({
                "AudioSourceName": format!("Audio Selector {n}"),
                "AudioNormalizationSettings": {"Algorithm": "ITU_BS_1770_2", "AlgorithmControl": "MEASURE_ONLY", "LoudnessLogging": "LOG", "PeakCalculation": "NONE"},
                "CodecSettings": aac
            })
        };
        let expected = json!({
            "TimecodeConfig": {"Source": "ZEROBASED"},
            "Inputs": [{
                "FileInput": "s3://cuepoint-ingest/masters/My Show (1).mxf",
                "TimecodeSource": "ZEROBASED",
                "VideoSelector": {},
                "AudioSelectors": {
                    "Audio Selector 1": {"SelectorType": "TRACK", "Tracks": [1], "DefaultSelection": "DEFAULT", "Offset": 0, "ProgramSelection": 1},
                    "Audio Selector 2": {"SelectorType": "TRACK", "Tracks": [2], "DefaultSelection": "NOT_DEFAULT", "Offset": 0, "ProgramSelection": 1}
                }
            }],
            "OutputGroups": [
                {
                    "Name": "Proxy",
                    "OutputGroupSettings": {"Type": "FILE_GROUP_SETTINGS", "FileGroupSettings": {"Destination": format!("{P}proxy/proxy")}},
                    "Outputs": [{
                        "Extension": "mp4",
                        "ContainerSettings": {"Container": "MP4", "Mp4Settings": {}},
                        "VideoDescription": {"Width": 640, "CodecSettings": {"Codec": "H_264", "H264Settings": {
                            "RateControlMode": "QVBR", "QvbrSettings": {"QvbrQualityLevel": 7}, "MaxBitrate": 1000000,
                            "SceneChangeDetect": "TRANSITION_DETECTION"
                        }}}
                    }]
                },
                {
                    "Name": "Audio",
                    "OutputGroupSettings": {"Type": "FILE_GROUP_SETTINGS", "FileGroupSettings": {"Destination": format!("{P}audio/audio")}},
                    "Outputs": [{
                        "NameModifier": "_240p",
                        "Extension": "mp4",
                        "ContainerSettings": {"Container": "MP4", "Mp4Settings": {}},
                        "VideoDescription": {"Width": 320, "Height": 240, "CodecSettings": {"Codec": "H_264", "H264Settings": {
                            "RateControlMode": "CBR", "Bitrate": 200000
                        }}},
                        "AudioDescriptions": [loudness(1), loudness(2)]
                    }]
                }
            ]
        });
        assert_eq!(build(2), expected);
    }

    #[test]
    fn tracks_0_1_2_8_64() {
        for n in [0u32, 1, 2, 8, 64] {
            let s = build(n);
            let selectors = s["Inputs"][0]
                .get("AudioSelectors")
                .and_then(Value::as_object);
            let groups: Vec<&str> = s["OutputGroups"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(group_name)
                .collect();
            let plan = JobPlan::from_settings(&s).unwrap();
            assert_eq!(plan.input, input());
            assert_eq!(plan.hls_master_uri(), None);
            assert_eq!(plan.proxy_uri().to_string(), format!("{P}proxy/proxy.mp4"));
            assert_eq!((plan.proxy.width, plan.proxy.height), (Some(640), None));
            if n == 0 {
                assert!(selectors.is_none(), "{n}");
                assert_eq!(groups, ["Proxy"]);
                assert_eq!(plan.audio, None);
                assert_eq!(plan.try_loudness_log_uri(1, 1), None);
                assert!(plan.loudness_log_uris().is_empty());
                assert_eq!(plan.output_group_details(Some(1)).len(), 1);
                continue;
            }
            let selectors = selectors.unwrap();
            assert_eq!(selectors.len(), n as usize);
            for k in 1..=n {
                let sel = &selectors[&format!("Audio Selector {k}")];
                assert_eq!(sel["Tracks"], json!([k]));
                assert_eq!(
                    sel["DefaultSelection"],
                    if k == 1 { "DEFAULT" } else { "NOT_DEFAULT" }
                );
                assert_eq!(sel["SelectorType"], "TRACK");
            }
            assert_eq!(groups, ["Proxy", "Audio"]);
            let descs = s["OutputGroups"][1]["Outputs"][0]["AudioDescriptions"]
                .as_array()
                .unwrap();
            assert_eq!(descs.len(), n as usize);
            let audio = plan.audio.as_ref().unwrap();
            assert_eq!(audio.output.to_string(), format!("{P}audio/audio_240p.mp4"));
            assert_eq!(audio.tracks.len(), n as usize);
            for (k, t) in audio.tracks.iter().enumerate() {
                let k = k as u32 + 1;
                assert_eq!(
                    descs[k as usize - 1]["AudioSourceName"],
                    format!("Audio Selector {k}")
                );
                assert_eq!(
                    *t,
                    AudioTrackPlan {
                        position: k,
                        track: k,
                        selector: format!("Audio Selector {k}"),
                        loudness_logging: true
                    }
                );
            }
            let logs = plan.loudness_log_uris();
            assert_eq!(logs.len(), n as usize);
            if n == 1 {
                assert_eq!(
                    logs[0],
                    (
                        1,
                        S3Uri::parse(&format!("{P}audio/audio_240p_loudness.csv")).unwrap()
                    )
                );
            } else {
                for (k, (track, uri)) in logs.iter().enumerate() {
                    assert_eq!(*track, k as u32 + 1);
                    assert_eq!(
                        uri.to_string(),
                        format!("{P}audio/audio_240p_loudness.{}.csv", k + 1)
                    );
                }
            }
            assert_eq!(plan.try_loudness_log_uri(n + 1, n), None);
            assert_eq!(plan.try_loudness_log_uri(0, n), None);
            for k in 1..=n {
                assert_eq!(
                    Some(plan.loudness_log_uri(k, n)),
                    plan.try_loudness_log_uri(k, n)
                );
            }
            let details = plan.output_group_details(Some(600_000));
            assert_eq!(details.len(), 2);
            assert_eq!(
                details[1].output_file_paths,
                vec![format!("{P}audio/audio_240p.mp4")]
            );
        }
    }

    #[test]
    fn loudness_log_naming_follows_the_seed() {
        // the original silent-track pipeline reads `<videoFileName>_loudness<.n>.csv` next to the video, `.n` only with 2+ tracks
        let s = build(8);
        let plan = JobPlan::from_settings(&s).unwrap();
        assert_eq!(
            plan.loudness_log_uri(1, 1).key.as_str(),
            "assets/a0123456789abcdef0123/audio/audio_240p_loudness.csv"
        );
        assert_eq!(
            plan.loudness_log_uri(3, 8).key.as_str(),
            "assets/a0123456789abcdef0123/audio/audio_240p_loudness.3.csv"
        );
        // without a name modifier the destination's base name is the file name
        let mut s = s;
        s["OutputGroups"][1]["Outputs"][0]
            .as_object_mut()
            .unwrap()
            .remove("NameModifier");
        let plan = JobPlan::from_settings(&s).unwrap();
        assert_eq!(
            plan.loudness_log_uri(2, 8).to_string(),
            format!("{P}audio/audio_loudness.2.csv")
        );
        assert_eq!(
            plan.audio.unwrap().output.to_string(),
            format!("{P}audio/audio.mp4")
        );
    }

    #[test]
    fn prefix_without_trailing_slash_and_wrapped_template() {
        let prefix = S3Uri::parse("s3://out-bucket/assets/a1").unwrap();
        let wrapped = json!({"Settings": default_template()});
        let s = build_job_settings(&wrapped, &input(), &prefix, 1).unwrap();
        let plan = JobPlan::from_settings(&s).unwrap();
        assert_eq!(
            plan.proxy_uri().to_string(),
            "s3://out-bucket/assets/a1/proxy/proxy.mp4"
        );
    }

    #[test]
    fn the_plan_reads_settings_it_did_not_build() {
        // a hand-edited job: track 3 measured alone, proxy 480 high
        let mut s = build(1);
        s["Inputs"][0]["AudioSelectors"] = json!({
            "Main": {"SelectorType": "TRACK", "Tracks": [2]},
            "Commentary": {"SelectorType": "TRACK", "Tracks": [3]}
        });
        s["OutputGroups"][0]["Outputs"][0]["VideoDescription"] = json!({"Height": 480});
        s["OutputGroups"][1]["Outputs"][0]["AudioDescriptions"][0]["AudioSourceName"] =
            json!("Commentary");
        s["OutputGroups"][1]["Outputs"][0]["AudioDescriptions"][0]["AudioNormalizationSettings"]
            ["LoudnessLogging"] = json!("DONT_LOG");
        let plan = JobPlan::from_settings(&s).unwrap();
        assert_eq!((plan.proxy.width, plan.proxy.height), (None, Some(480)));
        let audio = plan.audio.as_ref().unwrap();
        assert_eq!(
            audio.tracks,
            [AudioTrackPlan {
                position: 1,
                track: 3,
                selector: "Commentary".into(),
                loudness_logging: false
            }]
        );
        assert!(plan.loudness_log_uris().is_empty());
    }

    #[test]
    #[should_panic(expected = "without audio tracks")]
    fn loudness_log_of_a_silent_plan_is_a_caller_bug() {
        JobPlan::from_settings(&build(0))
            .unwrap()
            .loudness_log_uri(1, 1);
    }

    #[test]
    fn destinations_too_long_for_their_logs_are_refused() {
        // 1000-byte prefix: `audio/audio` fits in a key, `audio/audio_240p_loudness.<n>.csv` would not
        let long = S3Uri::parse(&format!("s3://b-1/{}/", "p".repeat(1000))).unwrap();
        let s = build_job_settings(&default_template(), &input(), &long, 2).unwrap();
        let e = JobPlan::from_settings(&s).unwrap_err();
        assert!(
            matches!(&e, JobSettingsError::Invalid { path, .. } if path == "OutputGroups[1].OutputGroupSettings.FileGroupSettings.Destination"),
            "{e}"
        );
    }

    #[test]
    fn bad_templates_and_settings_are_refused() {
        assert_eq!(
            build_job_settings(
                &default_template(),
                &input(),
                &prefix(),
                MAX_AUDIO_TRACKS + 1
            )
            .unwrap_err(),
            JobSettingsError::TooManyTracks(MAX_AUDIO_TRACKS + 1)
        );
        assert!(
            build_job_settings(&default_template(), &input(), &prefix(), MAX_AUDIO_TRACKS).is_ok()
        );
        let mut t = default_template();
        t["Inputs"][0]["AudioSelectors"] = json!({"Other": {"Tracks": [1]}});
        assert_eq!(
            build_job_settings(&t, &input(), &prefix(), 2).unwrap_err(),
            JobSettingsError::Missing {
                path: "Inputs[0].AudioSelectors.Audio Selector 1".into()
            }
        );
        let mut t = default_template();
        t["OutputGroups"].as_array_mut().unwrap().remove(0);
        assert_eq!(
            build_job_settings(&t, &input(), &prefix(), 2).unwrap_err(),
            JobSettingsError::Missing {
                path: "OutputGroups[Name=Proxy]".into()
            }
        );
        let mut t = default_template();
        t["OutputGroups"][1]["Outputs"][0]["AudioDescriptions"] = json!([]);
        assert_eq!(
            build_job_settings(&t, &input(), &prefix(), 2).unwrap_err(),
            JobSettingsError::Missing {
                path: "OutputGroups[1].Outputs[0].AudioDescriptions[0]".into()
            }
        );
        let mut t = default_template();
        t["OutputGroups"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Name": "Thumbnails"}));
        assert!(
            matches!(build_job_settings(&t, &input(), &prefix(), 1), Err(JobSettingsError::Invalid { ref why, .. }) if why.contains("Thumbnails"))
        );
        assert_eq!(
            build_job_settings(&json!({}), &input(), &prefix(), 1).unwrap_err(),
            JobSettingsError::Missing {
                path: "Inputs[0]".into()
            }
        );

        let good = build(2);
        let mut s = good.clone();
        s["OutputGroups"][1]["Outputs"][0]["AudioDescriptions"][1]["AudioSourceName"] =
            json!("Audio Selector 9");
        assert!(
            matches!(JobPlan::from_settings(&s), Err(JobSettingsError::Invalid { ref path, ref why })
            if path == "OutputGroups[1].Outputs[0].AudioDescriptions[1].AudioSourceName" && why.contains("Audio Selector 9"))
        );
        let mut s = good.clone();
        s["OutputGroups"][0]["OutputGroupSettings"]["Type"] = json!("DASH_ISO_GROUP_SETTINGS");
        assert!(
            matches!(JobPlan::from_settings(&s), Err(JobSettingsError::Invalid { ref path, .. }) if path == "OutputGroups[0].OutputGroupSettings.Type")
        );
        let mut s = good.clone();
        s["OutputGroups"][0]["OutputGroupSettings"]["FileGroupSettings"]["Destination"] =
            json!("https://example.com/x");
        assert!(
            matches!(JobPlan::from_settings(&s), Err(JobSettingsError::Invalid { ref path, .. })
            if path == "OutputGroups[0].OutputGroupSettings.FileGroupSettings.Destination")
        );
        let mut s = build_packaging_settings(
            &default_packaging_template(),
            &input(),
            &prefix(),
            &source(),
            &crate::packaging::DEFAULT_LADDER,
            &[],
        )
        .unwrap();
        s["OutputGroups"][0]["OutputGroupSettings"]["HlsGroupSettings"]["SegmentLength"] =
            json!(-1);
        assert!(PackagingPlan::from_settings(&s)
            .unwrap_err()
            .to_string()
            .contains("SegmentLength"));
    }

    fn source() -> PackagingSource {
        PackagingSource {
            width: 1920,
            height: 1080,
            frame_rate: FrameRate { num: 25, den: 1 },
            duration_s: 30.0,
            audio_track: Some(2),
        }
    }

    #[test]
    fn packaging_settings_carry_the_ladder_and_the_breaks() {
        let settings = build_packaging_settings(
            &default_packaging_template(),
            &input(),
            &prefix(),
            &source(),
            &crate::packaging::DEFAULT_LADDER,
            &[28.52, 8.41],
        )
        .unwrap();
        let scc = settings["Esam"]["SignalProcessingNotification"]["SccXml"]
            .as_str()
            .unwrap();
        assert!(
            scc.starts_with("<SignalProcessingNotification")
                && scc.ends_with("</SignalProcessingNotification>")
        );
        let mcc = settings["Esam"]["ManifestConfirmConditionNotification"]["MccXml"]
            .as_str()
            .unwrap();
        assert_eq!(mcc.matches("#EXT-X-CUE-OUT:0").count(), 2);
        let plan = PackagingPlan::from_settings(&settings).unwrap();
        // on the frame grid, in time order
        assert_eq!(plan.breaks, vec![8.4, 28.52]);
        let sizes: Vec<(&str, u32, u32)> = plan
            .renditions
            .iter()
            .map(|r| (r.name_modifier.as_str(), r.width, r.height))
            .collect();
        assert_eq!(
            sizes,
            [
                ("_1080p", 1920, 1080),
                ("_720p", 1280, 720),
                ("_480p", 854, 480),
                ("_360p", 640, 360)
            ]
        );
        assert!(plan.renditions.iter().all(|r| r.audio_track == Some(2)));
        assert_eq!(
            plan.master.to_string(),
            "s3://cuepoint-media/assets/a0123456789abcdef0123/hls/index.m3u8"
        );
        assert_eq!(
            plan.renditions[1].playlist.to_string(),
            "s3://cuepoint-media/assets/a0123456789abcdef0123/hls/index_720p.m3u8"
        );
        assert_eq!(plan.segment_length_s, 6);
        assert_eq!(plan.input, input());
    }

    #[test]
    fn a_smaller_or_silent_source_gets_fewer_rungs_and_no_audio() {
        let mut src = source();
        src.width = 1280;
        src.height = 720;
        src.audio_track = None;
        let settings = build_packaging_settings(
            &default_packaging_template(),
            &input(),
            &prefix(),
            &src,
            &crate::packaging::DEFAULT_LADDER,
            &[],
        )
        .unwrap();
        let plan = PackagingPlan::from_settings(&settings).unwrap();
        let names: Vec<&str> = plan
            .renditions
            .iter()
            .map(|r| r.name_modifier.as_str())
            .collect();
        assert_eq!(names, ["_720p", "_480p", "_360p"]);
        assert!(plan.renditions.iter().all(|r| r.audio_track.is_none()));
        assert!(plan.breaks.is_empty());
        assert!(settings["Inputs"][0].get("AudioSelectors").is_none());
    }

    #[test]
    fn the_first_job_makes_no_hls() {
        let settings = build(2);
        let plan = JobPlan::from_settings(&settings).unwrap();
        assert!(plan.hls.is_none());
        assert!(plan
            .output_group_details(Some(1))
            .iter()
            .all(|g| g.output_group_type.as_deref() != Some(HLS_GROUP)));
    }
}
