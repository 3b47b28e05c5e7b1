//! The C header: `include/redpool.h` is exactly what cbindgen generates from the sources (refresh
//! with `REDPOOL_BLESS=1 cargo test --test header`), it compiles alone as C99 and C++11 with
//! warnings as errors, and the shared library exports only `redpool_*` symbols, each declared in
//! the header.

mod support;

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    root().join("include/redpool.h")
}

fn config() -> cbindgen::Config {
    cbindgen::Config::from_file(root().join("cbindgen.toml")).expect("cbindgen.toml")
}

/// The version macros of cbindgen.toml agree with Cargo.toml (bump them together).
#[test]
fn version_macros_match_the_crate_version() {
    let macros = config().after_includes.unwrap_or_default();
    for expected in [
        format!("#define REDPOOL_VERSION \"{}\"", env!("CARGO_PKG_VERSION")),
        format!(
            "#define REDPOOL_VERSION_MAJOR {}",
            env!("CARGO_PKG_VERSION_MAJOR")
        ),
        format!(
            "#define REDPOOL_VERSION_MINOR {}",
            env!("CARGO_PKG_VERSION_MINOR")
        ),
        format!(
            "#define REDPOOL_VERSION_PATCH {}",
            env!("CARGO_PKG_VERSION_PATCH")
        ),
    ] {
        assert!(
            macros.contains(&expected),
            "cbindgen.toml after_includes lacks: {expected}"
        );
    }
}

fn generate() -> Vec<u8> {
    let config = config();
    let bindings = cbindgen::Builder::new()
        .with_crate(root())
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    out
}

#[test]
fn committed_header_is_what_cbindgen_generates() {
    let generated = generate();
    if std::env::var_os("REDPOOL_BLESS").is_some() {
        std::fs::write(header_path(), &generated).expect("write include/redpool.h");
        return;
    }
    let committed = std::fs::read(header_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "include/redpool.h is out of date with src/ffi; run: REDPOOL_BLESS=1 cargo test --test header"
    );
}

/// Every macro the header defines is in redpool's namespace: a `pub const` anywhere in the core
/// would otherwise reach C programs as an unprefixed `#define` (cbindgen exports every public
/// constant of the crate, not only those of `src/ffi`).
#[test]
fn header_defines_only_redpool_names() {
    let generated = String::from_utf8(generate()).expect("the header is UTF-8");
    let foreign: Vec<&str> = generated
        .lines()
        .filter_map(|line| line.strip_prefix("#define "))
        .filter_map(|rest| rest.split([' ', '(']).next())
        .filter(|name| !name.starts_with("REDPOOL_"))
        .collect();
    assert!(
        foreign.is_empty(),
        "include/redpool.h would define names outside REDPOOL_: {foreign:?} (make those \
         constants pub(crate), or prefix them if C needs them)"
    );
}

fn compiles(compiler: &str, args: &[&str]) {
    let output = Command::new(compiler)
        .args(args)
        .arg(header_path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "{compiler} {args:?} rejected the header:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn header_compiles_as_c99_and_cpp11_without_warnings() {
    let strict = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"];
    let mut c = vec!["-std=c99", "-x", "c"];
    c.extend(strict);
    compiles("cc", &c);
    let mut cpp = vec!["-std=c++11", "-x", "c++"];
    cpp.extend(strict);
    compiles("c++", &cpp);
}

#[test]
fn library_exports_only_declared_redpool_symbols() {
    let lib = support::cbuild::library_dir().join("libredpool.so");
    assert!(lib.exists(), "{} was not built", lib.display());
    let output = Command::new("nm")
        .args(["-D", "--defined-only", "--format=posix"])
        .arg(&lib)
        .output()
        .expect("nm (binutils) is needed");
    let text = String::from_utf8_lossy(&output.stdout);
    let header = std::fs::read_to_string(header_path()).unwrap();
    let exported: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| !s.is_empty())
        .collect();
    assert!(exported.contains(&"redpool_pool_new"), "{exported:?}");
    for symbol in exported {
        assert!(
            symbol.starts_with("redpool_"),
            "{symbol} is exported but is not a redpool_ symbol"
        );
        assert!(
            header.contains(&format!("{symbol}(")),
            "{symbol} is exported but not declared in the header"
        );
    }
}
