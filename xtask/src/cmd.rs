//! Running commands: every command is echoed before it runs, runs from the
//! workspace root, and a non-zero exit becomes an error that names it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The workspace root: the parent of this crate's manifest directory.
///
/// Cargo sets `CARGO_MANIFEST_DIR` when it runs the binary (`cargo xtask`,
/// `cargo test`), and that value wins over the one compiled in: a build
/// reused from a shared target directory may have been compiled in another
/// checkout, which may be gone.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.clone(), Path::to_path_buf)
}

/// A `cargo` command (through `$CARGO`, falling back to `cargo`) that runs
/// from the workspace root.
pub(crate) fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    cmd.current_dir(workspace_root());
    cmd
}

/// `CARGO_TARGET_DIR` made absolute, when it is set (and not empty).
pub(crate) fn target_dir_override() -> Result<Option<PathBuf>> {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map(|dir| std::path::absolute(PathBuf::from(dir)).context("resolving CARGO_TARGET_DIR"))
        .transpose()
}

/// Any other program, run from the workspace root.
pub(crate) fn program(name: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(name);
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs `cmd` with inherited stdout/stderr after echoing it; fails if it
/// cannot start or exits non-zero.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let line = render(cmd);
    eprintln!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        match status.code() {
            Some(code) => bail!("`{line}` failed with exit code {code}"),
            None => bail!("`{line}` was killed by a signal ({status})"),
        }
    }
    Ok(())
}

/// Runs `cmd` quietly (stdin closed, output captured) and returns its stdout
/// if it exited zero, `None` if it failed or could not start. For probes such
/// as `id -u` or `cargo fmt --version`; not echoed.
pub(crate) fn probe(cmd: &mut Command) -> Option<String> {
    let output = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The command as a shell-like line: explicitly set environment variables,
/// the program, then its arguments (quoted where needed).
pub(crate) fn render(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            parts.push(format!(
                "{}={}",
                key.to_string_lossy(),
                quote(&value.to_string_lossy())
            ));
        }
    }
    let program = cmd.get_program().to_string_lossy();
    // Show `$CARGO` as plain `cargo`: the full toolchain path is noise.
    let program = match Path::new(program.as_ref()).file_name() {
        Some(name) if name == "cargo" => "cargo".to_owned(),
        _ => program.into_owned(),
    };
    parts.push(program);
    parts.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    parts.join(" ")
}

fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Looks `name` up in `$PATH`; returns the first executable file found.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let name = Path::new(name);
    if name.components().count() > 1 {
        return is_executable(name).then(|| name.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// Formats a duration for the summary lines: `0.4s`, `52s`, `3m07s`.
pub(crate) fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.1}s")
    } else if secs < 60.0 {
        format!("{secs:.0}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// Measures how long `f` takes.
pub(crate) fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}
