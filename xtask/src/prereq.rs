//! System prerequisites for building and testing the whole workspace.
//!
//! RocksDB's bindings are generated at build time by bindgen, which loads
//! libclang and needs clang's builtin headers (`stddef.h`); RocksDB itself is
//! C++ and needs a C and C++ compiler. On Debian/Ubuntu those come from
//! `libclang-dev` and `g++`. seq-etcd's client (etcd-client) compiles etcd's
//! protobuf definitions at build time with `protoc` (`protobuf-compiler`),
//! which needs the well-known `google/protobuf/*.proto` files
//! (`libprotobuf-dev`), and its tests run real etcd members (`etcd-server`).
//! When they are missing and we run as root they are installed with apt-get;
//! otherwise we stop and say what to install.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Result, bail};

use crate::cmd;

/// One missing prerequisite and the Debian package that provides it.
struct Missing {
    what: String,
    package: &'static str,
}

/// Checks the prerequisites, installing missing ones with apt-get when
/// running as root. Fails with instructions otherwise.
pub(crate) fn ensure() -> Result<()> {
    let missing = check()?;
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|m| m.package).collect();
    packages.sort_unstable();
    packages.dedup();
    let list = missing
        .iter()
        .map(|m| format!("  - {} (package {})", m.what, m.package))
        .collect::<Vec<_>>()
        .join("\n");
    let install = format!("sudo apt-get install -y {}", packages.join(" "));
    let hint = if packages.contains(&"libclang-dev") {
        "\n(or, for a libclang outside the usual paths, set LIBCLANG_PATH to the \
         directory that holds libclang.so)"
    } else {
        ""
    };

    if !is_root() {
        bail!(
            "missing system prerequisites (RocksDB and etcd-client builds, etcd tests):\n{list}\n\
             install them with:\n    {install}{hint}"
        );
    }
    if cmd::which("apt-get").is_none() {
        bail!(
            "missing system prerequisites (RocksDB and etcd-client builds, etcd tests):\n\
             {list}\n\
             running as root, but apt-get is not available to install them; install \
             them with this system's package manager (or set LIBCLANG_PATH, PROTOC, \
             SEQ_ETCD_BIN)"
        );
    }

    eprintln!("prereq: missing:\n{list}\nprereq: running as root; installing with apt-get");
    cmd::run(
        cmd::program("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null()),
    )?;
    cmd::run(
        cmd::program("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null()),
    )?;

    let still = check()?;
    if !still.is_empty() {
        let list = still
            .iter()
            .map(|m| format!("  - {}", m.what))
            .collect::<Vec<_>>()
            .join("\n");
        bail!(
            "still missing after `apt-get install {}`:\n{list}",
            packages.join(" ")
        );
    }
    Ok(())
}

/// Reports what is present and returns what is missing. Fails outright when
/// an environment override (`LIBCLANG_PATH`, `CC`, `CXX`, `PROTOC`,
/// `SEQ_ETCD_BIN`) points at nothing, since installing packages would not fix
/// that.
fn check() -> Result<Vec<Missing>> {
    let mut missing = Vec::new();

    match libclang()? {
        Ok(found) => eprintln!("prereq: libclang: {found}"),
        Err(what) => missing.push(Missing {
            what,
            package: "libclang-dev",
        }),
    }
    for (role, env, candidates) in [
        ("C compiler", "CC", ["cc", "gcc", "clang"]),
        ("C++ compiler", "CXX", ["c++", "g++", "clang++"]),
    ] {
        match compiler(env, &candidates)? {
            Some(path) => eprintln!("prereq: {role}: {}", path.display()),
            None => missing.push(Missing {
                what: format!("a {role} ({})", candidates.join(", ")),
                package: "g++",
            }),
        }
    }

    match protoc()? {
        Some(path) => eprintln!("prereq: protoc: {}", path.display()),
        None => missing.push(Missing {
            what: "protoc (etcd-client compiles etcd's protobuf definitions with it)".to_owned(),
            package: "protobuf-compiler",
        }),
    }
    let descriptor = Path::new(WELL_KNOWN_PROTOS).join("google/protobuf/descriptor.proto");
    if descriptor.is_file() {
        eprintln!("prereq: protobuf well-known types: {WELL_KNOWN_PROTOS}");
    } else {
        missing.push(Missing {
            what: format!(
                "protobuf's well-known types ({} is missing; etcd's protos import them)",
                descriptor.display()
            ),
            package: "libprotobuf-dev",
        });
    }
    match etcd()? {
        Some(path) => eprintln!("prereq: etcd: {}", path.display()),
        None => missing.push(Missing {
            what: format!("etcd ({DEFAULT_ETCD}; seq-etcd's tests run a local cluster)"),
            package: "etcd-server",
        }),
    }
    Ok(missing)
}

/// Where Debian's libprotobuf-dev puts `google/protobuf/*.proto`, which protoc
/// finds by itself.
const WELL_KNOWN_PROTOS: &str = "/usr/include";

/// The etcd binary seq-etcd's test clusters run unless `SEQ_ETCD_BIN` is set
/// (Debian's etcd-server installs it).
const DEFAULT_ETCD: &str = "/usr/bin/etcd";

/// protoc named by `$PROTOC` (which prost-build honours), or on `$PATH`.
fn protoc() -> Result<Option<PathBuf>> {
    if let Some(path) = std::env::var_os("PROTOC").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "PROTOC={} is not a file; fix it or unset it",
                path.display()
            );
        }
        return Ok(Some(path));
    }
    Ok(cmd::which("protoc"))
}

/// The etcd binary named by `$SEQ_ETCD_BIN`, or [`DEFAULT_ETCD`].
fn etcd() -> Result<Option<PathBuf>> {
    if let Some(path) = std::env::var_os("SEQ_ETCD_BIN").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "SEQ_ETCD_BIN={} is not a file; fix it or unset it",
                path.display()
            );
        }
        return Ok(Some(path));
    }
    let path = PathBuf::from(DEFAULT_ETCD);
    Ok(path.is_file().then_some(path))
}

/// Finds libclang and clang's builtin headers. The inner `Ok` describes what
/// was found, the inner `Err` what is missing.
fn libclang() -> Result<Result<String, String>> {
    if let Some(dir) = std::env::var_os("LIBCLANG_PATH").filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        if dir.is_file() || !libclang_in(&dir).is_empty() {
            return Ok(Ok(format!(
                "LIBCLANG_PATH={} (trusted as set)",
                dir.display()
            )));
        }
        bail!(
            "LIBCLANG_PATH={} holds no libclang shared library; fix it or unset it",
            dir.display()
        );
    }

    let mut dirs: Vec<PathBuf> = Vec::new();
    dirs.extend(glob_dirs(Path::new("/usr/lib"), "llvm-", "lib"));
    dirs.extend(glob_dirs(Path::new("/usr/lib"), "", "").filter(|d| {
        d.file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("-linux-gnu"))
    }));
    dirs.extend(
        ["/usr/lib64", "/usr/lib", "/usr/local/lib", "/lib64"]
            .iter()
            .map(PathBuf::from),
    );
    let Some(lib) = dirs.iter().flat_map(|d| libclang_in(d)).next() else {
        return Ok(Err(
            "libclang (bindgen loads it to generate RocksDB's bindings)".to_owned(),
        ));
    };

    let Some(headers) = builtin_headers() else {
        return Ok(Err(format!(
            "clang's builtin headers (stddef.h; found {} but no clang/<version>/include)",
            lib.display()
        )));
    };
    Ok(Ok(format!(
        "{} (headers: {})",
        lib.display(),
        headers.display()
    )))
}

/// Shared libraries named like libclang (`libclang.so`, `libclang-14.so.1`),
/// not `libclang-cpp` or the compiler runtime libraries.
fn libclang_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let Some(name) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                return false;
            };
            let Some(rest) = name.strip_prefix("libclang") else {
                return false;
            };
            let versioned = rest
                .strip_prefix('-')
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()));
            (rest.starts_with(".so") || rest.starts_with(".dylib") || versioned)
                && (name.contains(".so") || name.contains(".dylib"))
                && p.exists()
        })
        .collect();
    found.sort();
    found
}

/// The directory holding clang's `stddef.h`, from the usual installs.
fn builtin_headers() -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = glob_dirs(Path::new("/usr/lib"), "llvm-", "lib/clang").collect();
    roots.extend(
        ["/usr/lib/clang", "/usr/lib64/clang", "/usr/local/lib/clang"]
            .iter()
            .map(PathBuf::from),
    );
    roots
        .iter()
        .flat_map(|root| glob_dirs(root, "", "include"))
        .find(|inc| inc.join("stddef.h").is_file())
}

/// Subdirectories of `dir` whose names start with `prefix`, each joined with
/// `suffix` (if not empty) and kept if that is a directory; reverse name
/// order, so the highest version comes first.
fn glob_dirs<'a>(
    dir: &Path,
    prefix: &'a str,
    suffix: &'a str,
) -> impl Iterator<Item = PathBuf> + 'a {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs.reverse();
    dirs.into_iter().filter_map(move |d| {
        let p = if suffix.is_empty() { d } else { d.join(suffix) };
        p.is_dir().then_some(p)
    })
}

/// A compiler named by `$env` (its first word), or the first of `candidates`
/// on `$PATH`.
fn compiler(env: &str, candidates: &[&str]) -> Result<Option<PathBuf>> {
    if let Some(value) = std::env::var_os(env) {
        let value = value.to_string_lossy().into_owned();
        if let Some(first) = value.split_whitespace().next() {
            return match cmd::which(first) {
                Some(path) => Ok(Some(path)),
                None => bail!("{env}={value} names no executable on PATH; fix it or unset it"),
            };
        }
    }
    Ok(candidates.iter().find_map(|c| cmd::which(c)))
}

/// Whether we run as root (`id -u` prints 0).
fn is_root() -> bool {
    cmd::probe(cmd::program("id").arg("-u")).is_some_and(|out| out.trim() == "0")
}
