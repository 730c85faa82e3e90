//! One audio track → 16 kHz mono f32 samples, through one FFmpeg process.

use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::error::{stderr_tail, SpeechError};

/// The sample rate every speech model here expects.
pub const SAMPLE_RATE: u32 = 16_000;

/// Decode audio track `track` (1-based, as in `speech.json`; FFmpeg's `-map 0:a:<track-1>`) of
/// `media` to 16 kHz mono (channels mixed down) f32 samples, read from FFmpeg's stdout pipe.
///
/// Memory: 3.84 MB per minute of audio. The FFmpeg child is killed if the future is dropped.
pub async fn decode_track_16k(
    ffmpeg: &Path,
    media: &Path,
    track: u32,
) -> Result<Vec<f32>, SpeechError> {
    let decode_error = |message: String| SpeechError::Decode {
        media: media.to_path_buf(),
        track,
        message,
    };
    if track == 0 {
        return Err(decode_error("tracks are numbered from 1".into()));
    }
    let mut child = Command::new(ffmpeg)
        .args(["-nostdin", "-nostats", "-v", "error", "-i"])
        .arg(media)
        .args(["-map", &format!("0:a:{}", track - 1), "-vn", "-sn", "-dn"])
        .args([
            "-ac",
            "1",
            "-ar",
            &SAMPLE_RATE.to_string(),
            "-f",
            "f32le",
            "pipe:1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                SpeechError::ToolMissing {
                    tool: "ffmpeg",
                    hint: "install FFmpeg (Debian: apt-get install ffmpeg) or set CUEPOINT_FFMPEG",
                }
            } else {
                SpeechError::io("starting", ffmpeg, e)
            }
        })?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let mut bytes = Vec::new();
    let mut err = Vec::new();
    let (out_read, err_read) =
        tokio::join!(stdout.read_to_end(&mut bytes), stderr.read_to_end(&mut err));
    out_read.map_err(|e| SpeechError::io("reading decoded audio from", ffmpeg, e))?;
    err_read.map_err(|e| SpeechError::io("reading messages from", ffmpeg, e))?;
    let status = child
        .wait()
        .await
        .map_err(|e| SpeechError::io("waiting for", ffmpeg, e))?;
    if !status.success() {
        return Err(decode_error(format!(
            "ffmpeg {status}: {}",
            stderr_tail(&err, 5)
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Write 16 kHz mono samples as a 16-bit PCM WAV (what the transcription engine reads best),
/// so a track decoded once for voice activity can be transcribed without decoding it again.
pub fn write_wav_16k(path: &Path, samples: &[f32]) -> Result<(), SpeechError> {
    std::fs::write(path, wav_bytes(samples, SAMPLE_RATE))
        .map_err(|e| SpeechError::io("writing", path, e))
}

pub(crate) fn wav_bytes(samples: &[f32], rate: u32) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for &s in samples {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Mono 16-bit PCM WAV → (sample rate, samples in −1..1). Tolerates a bogus data length (as
/// written by tools streaming to a pipe) by reading to the end.
pub(crate) fn read_wav_mono_i16(bytes: &[u8]) -> Option<(u32, Vec<f32>)> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut pos = 12;
    let mut rate = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            let fmt = bytes.get(body..body + 16)?;
            let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
            let bits = u16::from_le_bytes([fmt[14], fmt[15]]);
            if channels != 1 || bits != 16 {
                return None;
            }
            rate = Some(u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]));
        } else if id == b"data" {
            let end = body.saturating_add(len).min(bytes.len());
            let samples = bytes[body..end]
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                .collect();
            return Some((rate?, samples));
        }
        pos = body + len + (len & 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_round_trips() {
        let samples: Vec<f32> = (0..1000).map(|i| ((i as f32) / 50.0).sin() * 0.5).collect();
        let bytes = wav_bytes(&samples, SAMPLE_RATE);
        let (rate, back) = read_wav_mono_i16(&bytes).unwrap();
        assert_eq!(rate, SAMPLE_RATE);
        assert_eq!(back.len(), samples.len());
        assert!(back.iter().zip(&samples).all(|(a, b)| (a - b).abs() < 1e-3));
    }
}
