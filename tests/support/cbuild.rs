//! The C artifacts (`libredpool.so`, `libredpool.a`) of the current test build, built on demand:
//! `cargo test` builds only the rlib the Rust tests link, so tests that compile or inspect C
//! programs build the library first.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>` of this test build (the test binary lives in its `deps/`): where cargo puts
/// `libredpool.so` and `libredpool.a`. Built (or confirmed fresh) once per test run, see
/// `build_library`.
pub fn library_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_library).clone()
}

/// `cargo test --test c_abi` alone builds only the rlib that the Rust tests link, so the cdylib
/// and staticlib in `target/<profile>` may be missing or older than the sources. Run
/// `cargo build --lib` for the same profile and target directory first: a no-op when they are
/// fresh (cargo has released its lock by the time tests run).
fn build_library() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    let profile = dir
        .file_name()
        .expect("profile dir")
        .to_string_lossy()
        .into_owned();
    // target/<profile>, or target/<triple>/<profile> when building for an explicit target.
    let mut target_root = dir.parent().expect("target dir").to_path_buf();
    let mut triple = None;
    if !target_root.join("CACHEDIR.TAG").exists() {
        if let Some(up) = target_root
            .parent()
            .filter(|d| d.join("CACHEDIR.TAG").exists())
        {
            triple = target_root.file_name().map(OsString::from);
            target_root = up.to_path_buf();
        }
    }
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(OsString::from))
        .unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--lib", "--quiet", "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_root);
    if let Some(triple) = triple {
        cmd.arg("--target").arg(triple);
    }
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "building the C library failed: {cmd:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for lib in ["libredpool.so", "libredpool.a"] {
        assert!(
            dir.join(lib).exists(),
            "{} not found after {cmd:?}",
            dir.join(lib).display()
        );
    }
    dir
}
