//! Reader for the files `metadata=print:file=...` / `ametadata=print:file=...` write: a header
//! line `frame:K    pts:P    pts_time:T` per frame, then that frame's `key=value` lines.
//! One file per filter instance is the only reliable way to attribute values to a track: the
//! stderr lines of blackdetect/scdet/silencedetect do not carry the instance name.

use std::io::BufRead;
use std::path::Path;

use crate::error::EngineError;

/// One frame's metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MetaFrame {
    /// The printing filter's output frame counter.
    pub frame: u64,
    pub pts: Option<i64>,
    /// FFmpeg prints this with 6 significant digits: prefer `pts` × time base when known.
    pub pts_time: Option<f64>,
    pub values: Vec<(String, String)>,
}

impl MetaFrame {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.trim().parse::<f64>().ok())
    }
}

/// Call `each` for every frame in the file, in order. A file that does not exist counts as
/// empty (FFmpeg creates it only once a frame reaches the filter).
pub(crate) fn for_each_frame(
    path: &Path,
    mut each: impl FnMut(&MetaFrame),
) -> Result<(), EngineError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(EngineError::io("opening", path, e)),
    };
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut current: Option<MetaFrame> = None;
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| EngineError::io("reading", path, e))?;
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("frame:") {
            if let Some(done) = current.take() {
                each(&done);
            }
            current = Some(parse_header(line).ok_or_else(|| EngineError::Parse {
                path: path.to_path_buf(),
                line: n + 1,
                detail: format!("bad frame header {line:?}"),
            })?);
        } else if let Some((k, v)) = line.split_once('=') {
            match current.as_mut() {
                Some(f) => f.values.push((k.to_string(), v.to_string())),
                None => {
                    return Err(EngineError::Parse {
                        path: path.to_path_buf(),
                        line: n + 1,
                        detail: "key=value before any frame header".into(),
                    })
                }
            }
        }
    }
    if let Some(done) = current.take() {
        each(&done);
    }
    Ok(())
}

fn parse_header(line: &str) -> Option<MetaFrame> {
    let mut f = MetaFrame::default();
    let mut saw_frame = false;
    for field in line.split_whitespace() {
        let (k, v) = field.split_once(':')?;
        match k {
            "frame" => {
                f.frame = v.parse().ok()?;
                saw_frame = true;
            }
            "pts" => f.pts = v.parse().ok(),
            "pts_time" => f.pts_time = v.parse().ok(),
            _ => {}
        }
    }
    saw_frame.then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_frames_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.txt");
        std::fs::write(
            &p,
            "frame:0    pts:0       pts_time:0\nlavfi.scd.mafd=0.000\nframe:1    pts:512     pts_time:0.04\nlavfi.black_start=0.04\nlavfi.scd.mafd=1.5\n",
        )
        .unwrap();
        let mut frames = Vec::new();
        for_each_frame(&p, |f| frames.push(f.clone())).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].pts, Some(512));
        assert_eq!(frames[1].pts_time, Some(0.04));
        assert_eq!(frames[1].get_f64("lavfi.scd.mafd"), Some(1.5));
        assert_eq!(frames[1].get("lavfi.black_start"), Some("0.04"));
        assert_eq!(frames[0].get("lavfi.black_start"), None);
    }

    #[test]
    fn missing_file_is_empty_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        for_each_frame(&dir.path().join("none.txt"), |_| n += 1).unwrap();
        assert_eq!(n, 0);
        let p = dir.path().join("bad.txt");
        std::fs::write(&p, "lavfi.x=1\n").unwrap();
        let e = for_each_frame(&p, |_| {}).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}
