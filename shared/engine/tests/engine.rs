//! The engine against real FFmpeg on generated media (short, low-resolution clips).

use std::path::Path;
use std::sync::Mutex;

use cuepoint_core::loudness::LoudnessLog;
use cuepoint_core::rekognition::{Segment, CUE_BLACK_FRAMES, CUE_END_CREDITS};
use cuepoint_engine::*;
use cuepoint_runtime::ports::{ProbeError, Prober};

const FRAME: f64 = 1.0 / 25.0;

fn small(duration: f64) -> SampleSpec {
    SampleSpec {
        duration,
        width: 320,
        height: 180,
        fps: 25,
        track_count: 4,
        active_tracks: vec![1, 3],
        cuts: vec![],
        black_gaps: vec![],
        end_credits_from: None,
        x264_preset: "ultrafast".into(),
        ..SampleSpec::default()
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

#[tokio::test]
async fn probe_reads_a_generated_mkv() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mkv");
    let spec = SampleSpec {
        container: SampleContainer::Mkv,
        audio_codec: SampleAudioCodec::Aac,
        track_count: 3,
        active_tracks: vec![2],
        ..small(6.0)
    };
    generate_sample(&path, &spec).await.unwrap();

    let info = FfprobeProber.probe(path.to_str().unwrap()).await.unwrap();
    assert!(info.container.contains("matroska"), "{}", info.container);
    assert!(
        (info.duration_seconds - 6.0).abs() < 0.1,
        "{}",
        info.duration_seconds
    );
    let v = info.video.as_ref().unwrap();
    assert_eq!((v.codec.as_str(), v.width, v.height), ("h264", 320, 180));
    assert_eq!(v.frame_rate_ratio, "25/1");
    assert_eq!(v.frame_rate, 25.0);
    let tracks: Vec<(u32, u32, &str, u32, u32)> = info
        .audio_tracks
        .iter()
        .map(|a| {
            (
                a.track,
                a.stream_index,
                a.codec.as_str(),
                a.channels,
                a.sample_rate,
            )
        })
        .collect();
    assert_eq!(
        tracks,
        vec![
            (1, 1, "aac", 1, 48000),
            (2, 2, "aac", 1, 48000),
            (3, 3, "aac", 1, 48000)
        ]
    );
}

/// 16 s: cuts at 3 and 6.2 s, a black silent gap 8-10 s, a cut at 12 s, credits from 13 s.
#[tokio::test]
async fn analysis_matches_the_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mov");
    let spec = SampleSpec {
        cuts: vec![3.0, 6.2, 12.0],
        black_gaps: vec![(8.0, 10.0)],
        end_credits_from: Some(13.0),
        ..small(16.0)
    };
    let truth = generate_sample(&path, &spec).await.unwrap();
    assert_eq!(truth.cuts, vec![3.0, 6.2, 12.0]);

    let seen = Mutex::new(Vec::<f64>::new());
    let record = |f: f64| seen.lock().unwrap().push(f);
    let a = analyze(&path, &AnalyzeOptions::default(), Some(&record))
        .await
        .unwrap();
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&1.0));

    let d = &a.segments;
    assert_eq!(d.job_status.as_deref(), Some("SUCCEEDED"));
    let vm = &d.video_metadata[0];
    assert_eq!(vm.codec.as_deref(), Some("h264"));
    assert_eq!(vm.duration_millis, Some(16000));
    assert_eq!(vm.format.as_deref(), Some("QuickTime / MOV"));
    assert_eq!(
        (vm.frame_width, vm.frame_height, vm.frame_rate),
        (Some(320), Some(180), Some(25.0))
    );
    assert_eq!(d.audio_metadata.len(), 4);

    // Black frames: exactly the gap, to the frame.
    let black: Vec<&Segment> = d
        .segments
        .iter()
        .filter(|s| s.cue_type() == Some(CUE_BLACK_FRAMES))
        .collect();
    assert_eq!(black.len(), truth.black_gaps.len(), "{black:#?}");
    for (seg, (start, end)) in black.iter().zip(&truth.black_gaps) {
        assert!(
            (seconds(seg.start_timestamp_millis) - start).abs() <= FRAME + 1e-9,
            "black start {seg:?}"
        );
        assert!(
            (seconds(seg.end_timestamp_millis) - end).abs() <= FRAME + 1e-9,
            "black end {seg:?}"
        );
    }

    // Shots: every cut found to the frame, no shot that is not at a cut, a gap edge or the credits.
    let shots: Vec<&Segment> = d.segments.iter().filter(|s| s.is_shot()).collect();
    let starts: Vec<f64> = shots
        .iter()
        .map(|s| seconds(s.start_timestamp_millis))
        .collect();
    for cut in &truth.cuts {
        assert!(
            starts.iter().any(|s| (s - cut).abs() <= FRAME + 1e-9),
            "cut {cut} missed; shots start at {starts:?}"
        );
    }
    let mut edges: Vec<f64> = vec![0.0];
    edges.extend(&truth.cuts);
    for (a, b) in &truth.black_gaps {
        edges.extend([*a, *b]);
    }
    edges.extend(truth.end_credits.map(|(s, _)| s));
    for s in &starts {
        assert!(
            edges.iter().any(|e| (s - e).abs() <= FRAME + 1e-9),
            "spurious shot at {s}; edges {edges:?}"
        );
    }
    // They tile the timeline, frame by frame, indexed in order.
    assert_eq!(shots[0].start_frame_number, Some(0));
    for (i, w) in shots.windows(2).enumerate() {
        assert_eq!(
            w[0].end_frame_number.unwrap() + 1,
            w[1].start_frame_number.unwrap()
        );
        assert_eq!(w[0].end_timestamp_millis, w[1].start_timestamp_millis);
        assert_eq!(
            w[1].shot_segment.as_ref().unwrap().index,
            Some(i as u64 + 1)
        );
    }
    let last = shots.last().unwrap();
    assert_eq!(last.end_frame_number, Some(399));
    assert_eq!(last.end_timestamp_millis, 16000);
    assert_eq!(last.end_timecode_smpte.as_deref(), Some("00:00:16:00"));
    for s in &d.segments {
        let tc = s.start_timecode_smpte.as_deref().unwrap();
        assert!(tc.len() == 11 && tc.as_bytes()[8] == b':', "{tc}");
        assert_eq!(
            s.duration_frames.unwrap(),
            s.end_frame_number.unwrap() - s.start_frame_number.unwrap() + 1
        );
    }

    // End credits: one cue from the credits' start to the end.
    let credits: Vec<&Segment> = d
        .segments
        .iter()
        .filter(|s| s.cue_type() == Some(CUE_END_CREDITS))
        .collect();
    assert_eq!(credits.len(), 1, "{credits:#?}");
    let (cs, ce) = truth.end_credits.unwrap();
    assert!(
        (seconds(credits[0].start_timestamp_millis) - cs).abs() <= 0.5,
        "{:?}",
        credits[0]
    );
    assert!(
        (seconds(credits[0].end_timestamp_millis) - ce).abs() <= FRAME + 1e-9,
        "{:?}",
        credits[0]
    );

    // Audio: one log per track, silent tracks far below -50, active ones far above.
    assert_eq!(a.loudness.len(), 4);
    for (i, log) in a.loudness.iter().enumerate() {
        let track = i as u32 + 1;
        let max = log.summary.input_max_loudness;
        if truth.active_tracks.contains(&track) {
            assert!(max > -30.0, "track {track} should be active: {max}");
            assert!(log.summary.input_true_peak > -20.0 && log.summary.input_true_peak < 0.0);
        } else {
            assert!(max < -100.0, "track {track} should be silent: {max}");
        }
        assert_eq!(log.rows.len(), 160, "100 ms rows");
        assert!(log.rows.iter().all(|r| r.momentary.is_finite()
            && r.short_term.is_finite()
            && r.integrated.is_finite()));
        assert!(
            (log.rows[0].seconds - 0.1).abs() < 1e-9 && (log.rows[159].seconds - 16.0).abs() < 1e-9
        );
    }
    // The active track goes quiet under the black gap (momentary window 0.4 s).
    let quiet = a.loudness[0]
        .rows
        .iter()
        .find(|r| (r.seconds - 9.5).abs() < 1e-6)
        .unwrap();
    assert!(quiet.momentary < -100.0, "{quiet:?}");
}

#[tokio::test]
async fn coarser_loudness_rows_and_audio_only_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mov");
    generate_sample(&path, &small(5.0)).await.unwrap();
    let opts = AnalyzeOptions {
        video: false,
        loudness_row_interval: 1.0,
        ..AnalyzeOptions::default()
    };
    let a = analyze(&path, &opts, None).await.unwrap();
    assert!(a.segments.segments.is_empty());
    let secs: Vec<f64> = a.loudness[0].rows.iter().map(|r| r.seconds).collect();
    assert_eq!(secs, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    let bad = AnalyzeOptions {
        loudness_row_interval: 0.25,
        ..AnalyzeOptions::default()
    };
    assert!(matches!(
        analyze(&path, &bad, None).await,
        Err(EngineError::InvalidSpec { .. })
    ));
}

#[tokio::test]
async fn zero_byte_file_is_unusable_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.mov");
    std::fs::write(&path, b"").unwrap();
    match probe(path.to_str().unwrap()).await {
        Err(ProbeError::Unusable(msg)) => assert!(msg.contains("Invalid data"), "{msg}"),
        other => panic!("expected Unusable, got {other:?}"),
    }
    let e = analyze(&path, &AnalyzeOptions::default(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, EngineError::Unusable { .. }) && e.is_input_problem(),
        "{e}"
    );
    assert!(e.to_string().contains("empty.mov"), "{e}");
    let mut spec = TranscodeSpec::new(&path);
    spec.proxy = Some(ProxySpec::new(dir.path().join("p.mp4")));
    let e = transcode(&spec, None).await.unwrap_err();
    assert!(matches!(e, EngineError::Unusable { .. }), "{e}");
    match probe(dir.path().join("absent.mov").to_str().unwrap()).await {
        Err(ProbeError::Port(cuepoint_runtime::ports::PortError::NotFound(_))) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

fn truncate_to_half(src: &Path, dst: &Path) {
    let bytes = std::fs::read(src).unwrap();
    std::fs::write(dst, &bytes[..bytes.len() / 2]).unwrap();
}

#[tokio::test]
async fn truncated_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // MOV with the moov atom at the end: half a file has no index at all.
    let mov = dir.path().join("full.mov");
    generate_sample(&mov, &small(8.0)).await.unwrap();
    let cut_mov = dir.path().join("cut.mov");
    truncate_to_half(&mov, &cut_mov);
    match probe(cut_mov.to_str().unwrap()).await {
        Err(ProbeError::Unusable(msg)) => assert!(msg.contains("moov atom not found"), "{msg}"),
        other => panic!("expected Unusable, got {other:?}"),
    }
    // MKV: the header announces 8 s, the data stops near 4 s.
    let mkv = dir.path().join("full.mkv");
    generate_sample(
        &mkv,
        &SampleSpec {
            container: SampleContainer::Mkv,
            ..small(8.0)
        },
    )
    .await
    .unwrap();
    let cut_mkv = dir.path().join("cut.mkv");
    truncate_to_half(&mkv, &cut_mkv);
    let e = analyze(&cut_mkv, &AnalyzeOptions::default(), None)
        .await
        .unwrap_err();
    assert!(e.is_input_problem(), "{e}");
    match &e {
        EngineError::Truncated {
            decoded, expected, ..
        } => assert!(*decoded < 6.0 && *expected > 7.9, "{e}"),
        EngineError::Unusable { .. } => {}
        other => panic!("expected Truncated, got {other}"),
    }
    let mut spec = TranscodeSpec::new(&cut_mkv);
    spec.loudness_logs = vec![LoudnessLogSpec {
        track: 1,
        path: dir.path().join("t1.csv"),
    }];
    let e = transcode(&spec, None).await.unwrap_err();
    assert!(e.is_input_problem(), "{e}");
}

#[tokio::test]
async fn transcode_writes_hls_proxy_and_loudness_logs() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.mov");
    let truth = generate_sample(
        &src,
        &SampleSpec {
            cuts: vec![2.5, 7.3],
            ..small(10.4)
        },
    )
    .await
    .unwrap();
    let out = dir.path().join("out");
    let mut spec = TranscodeSpec::new(&src);
    spec.hls = Some(HlsSpec {
        x264_preset: "ultrafast".into(),
        ..HlsSpec::new(out.join("hls"))
    });
    spec.proxy = Some(ProxySpec {
        x264_preset: "ultrafast".into(),
        ..ProxySpec::new(out.join("proxy").join("proxy.mp4"))
    });
    spec.audio_output = Some(AudioOutputSpec {
        path: out.join("audio").join("src_240p.mp4"),
        width: 320,
        height: 240,
        tracks: vec![1, 2, 3, 4],
    });
    spec.loudness_logs = (1..=4)
        .map(|t| LoudnessLogSpec {
            track: t,
            path: out.join("audio").join(format!("src_{t}_loudness.csv")),
        })
        .collect();
    let calls = Mutex::new(0u32);
    let count = |_f: f64| *calls.lock().unwrap() += 1;
    let o = transcode(&spec, Some(&count)).await.unwrap();
    assert!(*calls.lock().unwrap() >= 1);

    // HLS: master -> media playlist -> 1 s segments (the last one takes the remainder).
    let master = std::fs::read_to_string(o.hls_master.as_ref().unwrap()).unwrap();
    assert!(
        master.contains("#EXT-X-STREAM-INF") && master.contains("index_720p.m3u8"),
        "{master}"
    );
    assert_eq!(o.hls_segments.len(), 11);
    assert!(o
        .hls_segments
        .iter()
        .all(|s| s.metadata().map(|m| m.len() > 0).unwrap_or(false)));
    let lengths: Vec<f64> = o
        .segment_boundaries
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    for l in &lengths[..lengths.len() - 1] {
        assert!((l - 1.0).abs() < 0.05, "segment of {l} s: {lengths:?}");
    }
    assert!(
        (o.segment_boundaries.last().unwrap() - 10.4).abs() < 0.05,
        "{:?}",
        o.segment_boundaries
    );
    let first_segment = probe(o.hls_segments[0].to_str().unwrap()).await.unwrap();
    assert_eq!(first_segment.audio_tracks.len(), 1);

    // Proxy: 640 wide, source aspect, H.264 + one audio track.
    let p = probe(o.proxy.as_ref().unwrap().to_str().unwrap())
        .await
        .unwrap();
    let v = p.video.unwrap();
    assert_eq!((v.codec.as_str(), v.width, v.height), ("h264", 640, 360));
    assert_eq!(p.audio_tracks.len(), 1);
    assert!((p.duration_seconds - truth.duration).abs() < 0.1);

    // The loudness vehicle: a small video carrying every measured track.
    let vehicle = probe(o.audio_output.as_ref().unwrap().to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(vehicle.video.map(|v| (v.width, v.height)), Some((320, 240)));
    assert_eq!(vehicle.audio_tracks.len(), 4);

    // Loudness logs parse back and tell silent from active tracks.
    assert_eq!(o.loudness_logs.len(), 4);
    for (track, path) in &o.loudness_logs {
        let log = LoudnessLog::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(log.rows.len(), 104);
        let active = truth.active_tracks.contains(track);
        assert_eq!(
            log.has_audio(-50.0),
            active,
            "track {track}: {:?}",
            log.summary
        );
        let (_, written) = o.loudness.iter().find(|(t, _)| t == track).unwrap();
        assert_eq!(&log, written);
    }
    assert_eq!(o.files().len(), 2 + 11 + 1 + 1 + 4);
}

/// The local MediaConvert measures loudness without encoding the Audio group's vehicle file:
/// the logs must be the very bytes the run with the vehicle writes.
#[tokio::test]
async fn loudness_logs_are_the_same_bytes_without_the_audio_vehicle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.mov");
    generate_sample(
        &src,
        &SampleSpec {
            black_gaps: vec![(2.0, 3.0)],
            ..small(6.0)
        },
    )
    .await
    .unwrap();
    let run = |name: &str, vehicle: bool| {
        let out = dir.path().join(name);
        let mut spec = TranscodeSpec::new(&src);
        spec.hls = Some(HlsSpec {
            x264_preset: "ultrafast".into(),
            ..HlsSpec::new(out.join("hls"))
        });
        spec.proxy = Some(ProxySpec {
            audio_track: None,
            x264_preset: "ultrafast".into(),
            ..ProxySpec::new(out.join("proxy").join("proxy.mp4"))
        });
        if vehicle {
            spec.audio_output = Some(AudioOutputSpec {
                path: out.join("audio").join("src_240p.mp4"),
                width: 320,
                height: 240,
                tracks: vec![1, 2, 3, 4],
            });
        }
        spec.loudness_logs = (1..=4)
            .map(|t| LoudnessLogSpec {
                track: t,
                path: out.join("audio").join(format!("src_{t}_loudness.csv")),
            })
            .collect();
        spec
    };
    let with = transcode(&run("with", true), None).await.unwrap();
    let without = transcode(&run("without", false), None).await.unwrap();
    assert_eq!(without.audio_output, None);
    assert_eq!(with.loudness_logs.len(), 4);
    for ((t1, a), (t2, b)) in with.loudness_logs.iter().zip(&without.loudness_logs) {
        assert_eq!(t1, t2);
        let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        assert!(a.len() > 100, "track {t1}: a log of {} bytes", a.len());
        assert!(a == b, "track {t1}: the logs differ");
    }
    let audio_dir: Vec<_> = std::fs::read_dir(dir.path().join("without").join("audio"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(audio_dir.len(), 4, "only the logs: {audio_dir:?}");
    assert!(audio_dir.iter().all(|n| n.ends_with("_loudness.csv")));
}

#[tokio::test]
async fn transcode_rejects_tracks_the_input_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.mov");
    generate_sample(&src, &small(2.0)).await.unwrap();
    let mut spec = TranscodeSpec::new(&src);
    spec.loudness_logs = vec![LoudnessLogSpec {
        track: 5,
        path: dir.path().join("t5.csv"),
    }];
    let e = transcode(&spec, None).await.unwrap_err();
    assert!(
        e.to_string().contains("audio track 5") && e.to_string().contains("4 audio track"),
        "{e}"
    );
}

async fn ffmpeg(args: &[&str]) {
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "ffmpeg {args:?}");
}

/// 29.97 fps: frame numbers from exact rational time, drop-frame timecodes with `;`.
#[tokio::test]
async fn ntsc_rate_gives_drop_frame_timecodes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ntsc.mov");
    let p = path.to_str().unwrap();
    ffmpeg(&[
        "-filter_complex",
        "testsrc2=s=160x90:r=30000/1001,trim=end_frame=60[a];smptehdbars=s=160x90:r=30000/1001,trim=end_frame=30[b];\
         [a][b]concat=n=2:v=1:a=0,format=yuv420p[v]",
        "-map",
        "[v]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        p,
    ])
    .await;
    let a = analyze(&path, &AnalyzeOptions::default(), None)
        .await
        .unwrap();
    let shots: Vec<&Segment> = a.segments.segments.iter().filter(|s| s.is_shot()).collect();
    assert_eq!(shots.len(), 2, "{shots:#?}");
    let cut = shots[1];
    assert_eq!(cut.start_frame_number, Some(60));
    assert_eq!(cut.start_timestamp_millis, 2002);
    assert_eq!(cut.start_timecode_smpte.as_deref(), Some("00:00:02;00"));
    assert_eq!(shots[0].end_frame_number, Some(59));
    assert_eq!(cut.end_frame_number, Some(89));
    assert_eq!(cut.end_timestamp_millis, 3003);
    assert!((a.segments.video_metadata[0].frame_rate.unwrap() - 29.97).abs() < 0.001);
}

/// MPEG-TS starts its clock at 1.4 s: times are reported from the start of the file.
#[tokio::test]
async fn transport_stream_times_count_from_the_file_start() {
    let dir = tempfile::tempdir().unwrap();
    let mov = dir.path().join("clip.mov");
    let truth = generate_sample(
        &mov,
        &SampleSpec {
            cuts: vec![2.0],
            black_gaps: vec![(3.0, 4.0)],
            ..small(6.0)
        },
    )
    .await
    .unwrap();
    let ts = dir.path().join("clip.ts");
    ffmpeg(&[
        "-i",
        mov.to_str().unwrap(),
        "-map",
        "0",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-f",
        "mpegts",
        ts.to_str().unwrap(),
    ])
    .await;
    let info = probe_media(ts.to_str().unwrap()).await.unwrap();
    assert!(
        info.start_time > 1.0,
        "MPEG-TS start time {}",
        info.start_time
    );
    let a = analyze(&ts, &AnalyzeOptions::default(), None)
        .await
        .unwrap();
    let black: Vec<&Segment> = a
        .segments
        .segments
        .iter()
        .filter(|s| s.cue_type() == Some(CUE_BLACK_FRAMES))
        .collect();
    assert_eq!(black.len(), 1);
    let (gs, ge) = truth.black_gaps[0];
    assert!(
        (seconds(black[0].start_timestamp_millis) - gs).abs() <= FRAME + 1e-9,
        "{:?}",
        black[0]
    );
    assert!(
        (seconds(black[0].end_timestamp_millis) - ge).abs() <= FRAME + 1e-9,
        "{:?}",
        black[0]
    );
    let starts: Vec<f64> = a
        .segments
        .segments
        .iter()
        .filter(|s| s.is_shot())
        .map(|s| seconds(s.start_timestamp_millis))
        .collect();
    assert!(
        starts.iter().any(|s| (s - 2.0).abs() <= FRAME + 1e-9),
        "{starts:?}"
    );
    assert_eq!(starts[0], 0.0);
    // Loudness rows count from the file start too.
    assert!(
        (a.loudness[0].rows[0].seconds - 0.1).abs() < 0.05,
        "{:?}",
        a.loudness[0].rows[0]
    );
}

/// The levels the detectors read are FFmpeg's `signalstats` values for the same frames.
#[tokio::test]
async fn frame_levels_equal_ffmpeg_signalstats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mov");
    let spec = SampleSpec {
        cuts: vec![1.0],
        black_gaps: vec![(2.0, 2.5)],
        end_credits_from: Some(3.0),
        ..small(4.0)
    };
    generate_sample(&path, &spec).await.unwrap();
    let meta = dir.path().join("stats.txt");
    let raw = dir.path().join("frames.yuv");
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(&path)
        .arg("-filter_complex")
        .arg(format!(
            "[0:v:0]scale=160:90:flags=fast_bilinear,format=yuv420p,split[a][b];\
             [a]signalstats,metadata=print:file={}[m]",
            meta.display()
        ))
        .args([
            "-map", "[m]", "-f", "null", "-", "-map", "[b]", "-f", "rawvideo",
        ])
        .arg(&raw)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&meta).unwrap();
    let printed: Vec<std::collections::HashMap<&str, f64>> = text
        .split("frame:")
        .skip(1)
        .map(|block| {
            block
                .lines()
                .filter_map(|l| l.strip_prefix("lavfi.signalstats."))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k, v.trim().parse().unwrap()))
                .collect()
        })
        .collect();
    let bytes = std::fs::read(&raw).unwrap();
    let mut meter = vision::LevelMeter::new(160, 90);
    let measured: Vec<_> = bytes
        .chunks_exact(meter.frame_len())
        .map(|f| meter.measure(f).unwrap())
        .collect();
    assert_eq!(measured.len(), printed.len());
    assert_eq!(measured.len(), 100);
    for (i, (m, p)) in measured.iter().zip(&printed).enumerate() {
        let ours = [
            ("YLOW", m.y_low),
            ("YAVG", m.y_avg),
            ("YHIGH", m.y_high),
            ("YMAX", m.y_max),
            ("ULOW", m.u_low),
            ("UAVG", m.u_avg),
            ("UHIGH", m.u_high),
            ("VLOW", m.v_low),
            ("VAVG", m.v_avg),
            ("VHIGH", m.v_high),
            ("SATAVG", m.sat_avg),
            ("YDIF", m.y_dif),
        ];
        for (key, value) in ours {
            assert_eq!(value, p[key], "frame {i} {key}");
        }
    }
}

/// The one decode the local analyses share hands the vision samples over while it decodes and
/// fails as the segment analysis does when the video stops early.
#[tokio::test]
async fn the_shared_decode_gives_samples_and_the_segments_or_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mkv = dir.path().join("full.mkv");
    let spec = SampleSpec {
        container: SampleContainer::Mkv,
        cuts: vec![2.0, 5.0],
        ..small(8.0)
    };
    generate_sample(&mkv, &spec).await.unwrap();
    let opts = AnalyzeOptions {
        loudness: false,
        ..AnalyzeOptions::default()
    };
    let sampling = vision::SampleOptions::default();
    let run = |path: std::path::PathBuf| {
        let (opts, sampling) = (opts.clone(), sampling.clone());
        async move {
            let info = probe_media(path.to_str().unwrap()).await?;
            tokio::task::spawn_blocking(move || {
                analyze::segments_with_samples(&path, &info, &opts, Some(&sampling), |frames| {
                    frames
                        .map(|f| f.map(|f| (f.timestamp_ms, f.frame.width, f.frame.height)))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .await
            .unwrap()
        }
    };
    let (segments, samples) = run(mkv.clone()).await.unwrap();
    let samples = samples.unwrap();
    // One a second, plus the first frames of the shots at 2 s and 5 s when off the grid.
    assert!(samples.len() >= 8, "{samples:?}");
    assert!(samples.iter().all(|&(_, w, h)| (w, h) == (320, 180)));
    assert_eq!(samples[0].0, 0);
    assert!(samples.windows(2).all(|w| w[0].0 < w[1].0), "{samples:?}");
    let alone = analyze(&mkv, &opts, None).await.unwrap();
    assert_eq!(segments, alone.segments);

    let cut = dir.path().join("cut.mkv");
    truncate_to_half(&mkv, &cut);
    match run(cut).await {
        Err(EngineError::Truncated {
            decoded, expected, ..
        }) => assert!(decoded < 6.0 && expected > 7.9),
        Err(EngineError::Unusable { .. }) => {}
        other => panic!("expected Truncated, got {other:?}"),
    }
}
