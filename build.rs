//! Builds the XDP program (`src/dataplane/bpf/secsip.bpf.c`) with clang's BPF target; the
//! object is embedded in the binary with `include_bytes!`, so the appliance is one file.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "src/dataplane/bpf/secsip.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=SECSIP_CLANG");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("secsip.bpf.o");
    let clang = env::var("SECSIP_CLANG").unwrap_or_else(|_| "clang".into());
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    // <asm/types.h>, which <linux/bpf.h> includes, lives under the multiarch directory on Debian.
    let multiarch = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        other => other,
    };
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .args(["-c", src, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "{clang} failed ({s}) building {src}; the XDP program needs clang and libbpf-dev \
             (Debian: apt-get install clang libbpf-dev, or `make deps`)"
        ),
        Err(e) => panic!(
            "cannot run {clang} ({e}) to build {src}; install clang and libbpf-dev \
             (Debian: apt-get install clang libbpf-dev, or `make deps`), or set SECSIP_CLANG"
        ),
    }
}
