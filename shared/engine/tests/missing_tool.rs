//! A missing FFmpeg is a typed error naming the tool (own test binary: it changes the environment).
//! It is a fault of the machine, not of the media: the probe reports it as transient, so the
//! message is retried until the operator installs FFmpeg, and dead-lettered with this reason if
//! never.

use cuepoint_engine::{analyze, AnalyzeOptions, EngineError, Tools};

#[tokio::test]
async fn missing_ffmpeg_is_a_clear_typed_error() {
    std::env::set_var("CUEPOINT_FFPROBE", "/nonexistent/ffprobe");
    let e = Tools::locate().unwrap_err();
    assert!(
        matches!(
            e,
            EngineError::ToolMissing {
                tool: "ffprobe",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("install FFmpeg"), "{e}");
    let e = analyze(
        std::path::Path::new("/tmp/whatever.mov"),
        &AnalyzeOptions::default(),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, EngineError::ToolMissing { .. }), "{e}");
    match cuepoint_engine::probe("/etc/hostname").await {
        Err(cuepoint_runtime::ports::ProbeError::Port(p)) => {
            assert!(p.is_transient(), "{p}");
            let message = p.to_string();
            assert!(message.contains("infrastructure fault"), "{message}");
            assert!(message.contains("ffprobe"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
