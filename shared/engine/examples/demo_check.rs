//! Generate the `cuepoint demo` asset and print what the analysis finds next to the truth.
//!
//!     cargo run -p cuepoint-engine --example demo_check -- /tmp/demo.mov

use cuepoint_engine::{analyze, generate_sample, AnalyzeOptions, SampleSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "demo.mov".into());
    let path = std::path::Path::new(&path);
    let t0 = std::time::Instant::now();
    let truth = generate_sample(path, &SampleSpec::default()).await?;
    println!(
        "generated {} in {:.1} s: {}",
        path.display(),
        t0.elapsed().as_secs_f64(),
        serde_json::to_string(&truth)?
    );
    let t0 = std::time::Instant::now();
    let a = analyze(path, &AnalyzeOptions::default(), None).await?;
    println!("analysed in {:.1} s", t0.elapsed().as_secs_f64());
    for s in &a.segments.segments {
        let what = s.cue_type().map(str::to_string).unwrap_or_else(|| {
            format!(
                "SHOT {}",
                s.shot_segment.as_ref().and_then(|x| x.index).unwrap_or(0)
            )
        });
        println!(
            "{what:>12} {:>6}..{:>6} ms  frames {:>4}..{:>4}  {} -> {}",
            s.start_timestamp_millis,
            s.end_timestamp_millis,
            s.start_frame_number.unwrap_or(0),
            s.end_frame_number.unwrap_or(0),
            s.start_timecode_smpte.as_deref().unwrap_or(""),
            s.end_timecode_smpte.as_deref().unwrap_or("")
        );
    }
    for (i, l) in a.loudness.iter().enumerate() {
        println!(
            "track {}: input max loudness {:.1} LUFS, integrated {:.1}, true peak {:.1} dBTP",
            i + 1,
            l.summary.input_max_loudness,
            l.summary.input_integrated,
            l.summary.input_true_peak
        );
    }
    Ok(())
}
