//! Everything the scorers read, as one pure value, and how to fill it from a results layout.

use crate::domain::ObjectKey;
use crate::loudness::{LoudnessError, LoudnessLog, SummaryRowCells};
use crate::rekognition::{
    CelebrityResults, FaceResults, LabelResults, ModerationResults, SegmentDetection, VideoMetadata,
};
use crate::results;
use crate::speech::SpeechResults;

/// More loudness tracks than this is treated as a broken results directory.
pub const MAX_LOUDNESS_TRACKS: usize = 64;

/// The inputs of slot scoring. A `None` list means "no results of that kind" (the file was
/// missing), which scores like an empty list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoringInputs {
    /// One loudness log per audio track, track 1 (the programme audio) first.
    pub loudness: Vec<LoudnessLog>,
    /// Columns 0 and 3 of track 1's summary row as read from its CSV; the reference policy
    /// walks that row like the sample does. `None` (logs built in memory) walks nothing extra,
    /// which is what walking a summary row written by `LoudnessLog::to_csv` amounts to.
    pub programme_summary_cells: Option<SummaryRowCells>,
    pub segments: Option<SegmentDetection>,
    pub labels: Option<LabelResults>,
    pub celebrities: Option<CelebrityResults>,
    pub faces: Option<FaceResults>,
    pub moderation: Option<ModerationResults>,
    /// When someone speaks. `None` (no `speech.json`) means unknown, not "no speech".
    pub speech: Option<SpeechResults>,
    /// Start times of the HLS segments (0 first, then the cumulative `#EXTINF` durations), when
    /// the rendition is known.
    pub hls_segment_boundaries: Option<Vec<f64>>,
}

/// Why a results directory could not be read. Every variant names the file (relative to the
/// results directory).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
    #[error("{file}: not UTF-8 text")]
    NotUtf8 { file: String },
    #[error("{file}: {source}")]
    Loudness {
        file: String,
        #[source]
        source: LoudnessError,
    },
    #[error("{file}: invalid JSON for {what}: {message}")]
    Json {
        file: String,
        what: &'static str,
        message: String,
    },
    #[error("{file}: {message}")]
    Hls { file: String, message: String },
    #[error("{file}: more than {MAX_LOUDNESS_TRACKS} loudness tracks")]
    TooManyTracks { file: String },
}

impl InputError {
    /// The file (relative to the results directory) the error is about.
    pub fn file(&self) -> &str {
        match self {
            Self::Read { file, .. }
            | Self::NotUtf8 { file }
            | Self::Loudness { file, .. }
            | Self::Json { file, .. }
            | Self::Hls { file, .. }
            | Self::TooManyTracks { file } => file,
        }
    }
}

impl ScoringInputs {
    /// Reads a results layout through `read`, which maps a relative path (e.g.
    /// `loudness/track-1.csv`) to its bytes, `Ok(None)` when the file does not exist, or an error
    /// message. Reads `loudness/track-<n>.csv` for n = 1, 2, ... up to the first missing one,
    /// `segments.json`, `labels.json`, `celebrities.json`, `faces.json`, `moderation.json`,
    /// `speech.json`, and
    /// `hls/index.m3u8` (following a master playlist to its first variant) for segment
    /// boundaries. A missing file means no results of that kind.
    pub fn from_files(
        read: impl Fn(&str) -> Result<Option<Vec<u8>>, String>,
    ) -> Result<ScoringInputs, InputError> {
        let read_text = |file: &str| -> Result<Option<String>, InputError> {
            match read(file) {
                Ok(None) => Ok(None),
                Ok(Some(bytes)) => {
                    String::from_utf8(bytes)
                        .map(Some)
                        .map_err(|_| InputError::NotUtf8 {
                            file: file.to_string(),
                        })
                }
                Err(message) => Err(InputError::Read {
                    file: file.to_string(),
                    message,
                }),
            }
        };

        let mut inputs = ScoringInputs::default();
        for n in 1.. {
            let file = results::loudness_track(n);
            let Some(text) = read_text(&file)? else { break };
            if n > MAX_LOUDNESS_TRACKS {
                return Err(InputError::TooManyTracks { file });
            }
            let (log, cells) = LoudnessLog::parse_with_summary_cells(&text).map_err(|source| {
                InputError::Loudness {
                    file: file.clone(),
                    source,
                }
            })?;
            if n == 1 {
                inputs.programme_summary_cells = Some(cells);
            }
            inputs.loudness.push(log);
        }

        inputs.segments = read_json(&read_text, results::SEGMENTS, "segment detection")?;
        inputs.labels = read_json(&read_text, results::LABELS, "label detection")?;
        inputs.celebrities = read_json(&read_text, results::CELEBRITIES, "celebrity recognition")?;
        inputs.faces = read_json(&read_text, results::FACES, "face detection")?;
        inputs.moderation = read_json(&read_text, results::MODERATION, "content moderation")?;
        inputs.speech = read_json(&read_text, results::SPEECH, "speech activity")?;
        inputs.hls_segment_boundaries = read_hls(&read_text)?;
        Ok(inputs)
    }

    /// Programme duration in seconds: segment detection's `VideoMetadata[0].DurationMillis`
    /// (what the sample uses), else the first `DurationMillis` of the other results, else the
    /// last loudness row's time of the longest track.
    pub fn duration_seconds(&self) -> Option<f64> {
        fn first(meta: &[VideoMetadata]) -> Option<f64> {
            meta.first()
                .and_then(|m| m.duration_millis)
                .map(|ms| ms as f64 / 1000.0)
        }
        self.segments
            .as_ref()
            .and_then(|s| s.duration_seconds())
            .or_else(|| self.labels.as_ref().and_then(|r| first(&r.video_metadata)))
            .or_else(|| self.faces.as_ref().and_then(|r| first(&r.video_metadata)))
            .or_else(|| {
                self.celebrities
                    .as_ref()
                    .and_then(|r| first(&r.video_metadata))
            })
            .or_else(|| {
                self.moderation
                    .as_ref()
                    .and_then(|r| first(&r.video_metadata))
            })
            .or_else(|| {
                self.loudness
                    .iter()
                    .filter_map(LoudnessLog::last_seconds)
                    .reduce(f64::max)
            })
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    read_text: &impl Fn(&str) -> Result<Option<String>, InputError>,
    file: &str,
    what: &'static str,
) -> Result<Option<T>, InputError> {
    let Some(text) = read_text(file)? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| InputError::Json {
            file: file.to_string(),
            what,
            message: e.to_string(),
        })
}

fn read_hls(
    read_text: &impl Fn(&str) -> Result<Option<String>, InputError>,
) -> Result<Option<Vec<f64>>, InputError> {
    let master = results::HLS_MASTER;
    let Some(text) = read_text(master)? else {
        return Ok(None);
    };
    let hls_err = |file: &str, message: String| InputError::Hls {
        file: file.to_string(),
        message,
    };
    if text.contains("#EXTINF") {
        return parse_hls_boundaries(&text)
            .map(Some)
            .map_err(|m| hls_err(master, m));
    }
    let Some(uri) = first_variant(&text) else {
        return Err(hls_err(
            master,
            "neither segments (#EXTINF) nor a variant playlist".into(),
        ));
    };
    let variant = format!("{}/{}", results::HLS_DIR, uri.trim_start_matches("./"));
    // `read` joins the path onto a directory or prefix: no `..`, `.` or empty segment, no NUL or
    // backslash, or the variant could name a file outside the results layout.
    let inside =
        ObjectKey::parse(variant.as_str()).is_ok_and(|k| k.relative_path_segments().is_some());
    if uri.contains("://") || uri.starts_with('/') || !inside {
        return Err(hls_err(
            master,
            format!(
                "variant playlist {uri:?} is not a relative path inside {}/",
                results::HLS_DIR
            ),
        ));
    }
    let Some(text) = read_text(&variant)? else {
        return Err(hls_err(
            master,
            format!("names variant playlist {variant}, which is missing"),
        ));
    };
    parse_hls_boundaries(&text)
        .map(Some)
        .map_err(|m| hls_err(&variant, m))
}

/// The URI of the first variant of a master playlist (the first non-tag line).
pub fn first_variant(master: &str) -> Option<&str> {
    master
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Segment start times of an HLS media playlist: 0, then the running sum of the `#EXTINF`
/// durations (the last value is the end of the last segment).
pub fn parse_hls_boundaries(media_playlist: &str) -> Result<Vec<f64>, String> {
    let mut boundaries = vec![0.0];
    let mut at = 0.0;
    for (i, line) in media_playlist.lines().enumerate() {
        let Some(rest) = line.trim().strip_prefix("#EXTINF:") else {
            continue;
        };
        let value = rest.split(',').next().unwrap_or("").trim();
        let duration: f64 = value
            .parse()
            .ok()
            .filter(|d: &f64| d.is_finite() && *d >= 0.0)
            .ok_or_else(|| {
                format!(
                    "line {}: segment duration is not a number: {value:?}",
                    i + 1
                )
            })?;
        at += duration;
        boundaries.push(at);
    }
    if boundaries.len() == 1 {
        return Err("the playlist has no segments (#EXTINF)".into());
    }
    Ok(boundaries)
}
