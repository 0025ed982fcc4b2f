// SPDX-License-Identifier: MIT
//! Finds libwhsem with the `pkg-config` program (not a crate: this package
//! has no dependencies) and tells rustc how to link it.

use std::env;
use std::path::Path;
use std::process::Command;

const NOT_FOUND: &str = "libwhsem not found by pkg-config: install it (cmake --install) \
                         or set PKG_CONFIG_PATH to the directory holding whsem.pc";

fn main() {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");
    println!("cargo:rerun-if-env-changed=WHSEM_NO_RPATH");
    println!("cargo:rerun-if-changed=build.rs");

    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let output = match Command::new(&pkg_config)
        .args(["--libs", "--cflags", "whsem"])
        .output()
    {
        Ok(output) => output,
        Err(err) => fail(&format!("cannot run `{pkg_config}` ({err})")),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        fail(stderr.trim());
    }
    let flags = String::from_utf8_lossy(&output.stdout).into_owned();

    let mut search_dirs = Vec::new();
    let mut libs = Vec::new();
    for flag in flags.split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-L") {
            search_dirs.push(dir.to_string());
        } else if let Some(lib) = flag.strip_prefix("-l") {
            libs.push(lib.to_string());
        }
        // -I and other compiler flags do not concern rustc.
    }
    if !libs.iter().any(|l| l == "whsem") {
        fail(&format!(
            "pkg-config gave no -lwhsem (it said: {})",
            flags.trim()
        ));
    }
    for dir in &search_dirs {
        println!("cargo:rustc-link-search=native={dir}");
    }
    for lib in &libs {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    // Lets dependents' build scripts find the library too (DEP_WHSEM_LIBDIR).
    if let Some(dir) = search_dirs.first() {
        println!("cargo:libdir={dir}");
    }

    // This package's own executables (tests, examples, the worker) find the
    // library they were linked against without LD_LIBRARY_PATH, which still
    // takes precedence (the linker writes DT_RUNPATH). Dependents are not
    // affected: link arguments of a build script apply to its own package.
    if env::var_os("WHSEM_NO_RPATH").is_none() {
        for dir in search_dirs.iter().filter(|d| !is_system_dir(d)) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
}

fn is_system_dir(dir: &str) -> bool {
    // The loader searches these anyway; a runpath there only adds noise.
    let dir = Path::new(dir.trim_end_matches('/'));
    let roots = [
        Path::new("/lib"),
        Path::new("/lib64"),
        Path::new("/usr/lib"),
        Path::new("/usr/lib64"),
    ];
    roots.iter().any(|r| dir == *r || dir.parent() == Some(*r))
}

fn fail(detail: &str) -> ! {
    eprintln!("error: {NOT_FOUND}");
    if !detail.is_empty() {
        eprintln!("pkg-config said: {detail}");
    }
    std::process::exit(1);
}
