//! Scene-change scores of every hard cut in a generated sample (checks that the test patterns
//! differ enough): `cargo run -p cuepoint-engine --example cut_scores -- 1920x1080`.

use cuepoint_engine::{analyze, generate_sample, AnalyzeOptions, SampleSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let size = std::env::args().nth(1).unwrap_or_else(|| "320x180".into());
    let (w, h) = size.split_once('x').ok_or("WIDTHxHEIGHT")?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("cuts.mov");
    // Two full cycles of the six looks, one second each.
    let spec = SampleSpec {
        duration: 13.0,
        width: w.parse()?,
        height: h.parse()?,
        cuts: (1..13).map(f64::from).collect(),
        black_gaps: vec![],
        end_credits_from: None,
        track_count: 1,
        active_tracks: vec![1],
        x264_preset: "ultrafast".into(),
        ..SampleSpec::default()
    };
    let truth = generate_sample(&path, &spec).await?;
    let a = analyze(&path, &AnalyzeOptions::default(), None).await?;
    for cut in &truth.cuts {
        let shot = a
            .segments
            .segments
            .iter()
            .filter(|s| s.is_shot())
            .find(|s| (s.start_timestamp_millis as f64 / 1000.0 - cut).abs() < 0.05);
        match shot {
            Some(s) => println!(
                "cut {cut:>5}: found, confidence {:?}",
                s.shot_segment.as_ref().and_then(|x| x.confidence)
            ),
            None => println!("cut {cut:>5}: MISSED"),
        }
    }
    Ok(())
}
