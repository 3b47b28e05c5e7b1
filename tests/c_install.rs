//! Packaging for C users, as a user would do it: `bindings/c/install.sh` into a fresh prefix, then
//! `examples/c` built against the installed library with pkg-config (and with CMake when it is
//! installed), and run against a real server.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{RedisServer, unique_name, with_timeout};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>` of this test build, with the C library built in it.
fn target_dir() -> PathBuf {
    support::cbuild::library_dir()
}

fn run(cmd: &mut Command) -> Output {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn copy_example(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for file in ["hello.c", "Makefile", "CMakeLists.txt"] {
        std::fs::copy(root().join("examples/c").join(file), to.join(file)).unwrap();
    }
}

fn check_hello(binary: &Path, server: &RedisServer) {
    let output = run(Command::new(binary).env("REDIS_URL", format!("{}/0", server.url())));
    let text = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "SET -> OK",
        "GET -> 8 bytes",
        "pipeline -> 3 replies, last 3",
        "transaction -> 13",
        "stats: open=",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn installed_library_builds_and_runs_the_example() {
    with_timeout(Duration::from_secs(300), || {
        let server = RedisServer::start();
        let work = std::env::temp_dir().join(unique_name("redpool-install"));
        let prefix = work.join("prefix");
        let profile = target_dir()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let target_root = target_dir().parent().unwrap().to_path_buf();
        run(Command::new("bash")
            .arg(root().join("bindings/c/install.sh"))
            .args([
                "--prefix",
                prefix.to_str().unwrap(),
                "--profile",
                &profile,
                "--no-build",
            ])
            .env("CARGO_TARGET_DIR", &target_root));
        for installed in [
            "include/redpool.h",
            "lib/libredpool.so",
            "lib/libredpool.a",
            "lib/pkgconfig/redpool.pc",
            "lib/cmake/redpool/redpoolConfig.cmake",
        ] {
            assert!(prefix.join(installed).exists(), "{installed} not installed");
        }

        // pkg-config + make
        let make_dir = work.join("make");
        copy_example(&make_dir);
        run(Command::new("make")
            .arg("-C")
            .arg(&make_dir)
            .arg("PKG_CONFIG=1")
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")));
        check_hello(&make_dir.join("hello"), &server);

        // CMake's find_package, when cmake is available.
        if Command::new("cmake").arg("--version").output().is_ok() {
            let cmake_dir = work.join("cmake");
            copy_example(&cmake_dir);
            run(Command::new("cmake")
                .arg("-S")
                .arg(&cmake_dir)
                .arg("-B")
                .arg(cmake_dir.join("build"))
                .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())));
            run(Command::new("cmake")
                .arg("--build")
                .arg(cmake_dir.join("build")));
            // A second run on the same server: the counter goes on from 13.
            let output = run(Command::new(cmake_dir.join("build/hello"))
                .env("REDIS_URL", format!("{}/0", server.url())));
            assert!(String::from_utf8_lossy(&output.stdout).contains("transaction -> 26"));
        } else {
            eprintln!("cmake not installed: the CMake package was installed but not exercised");
        }
        let _ = std::fs::remove_dir_all(work);
    });
}
