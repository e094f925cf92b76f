// SPDX-License-Identifier: GPL-2.0
//! With the `vchan` feature only: links Xen's static libraries for libxenvchan, from
//! Debian 12's libxen-dev (4.17). The order is that of their dependencies: libxenvchan
//! uses libxengnttab, libxenevtchn and libxenstore, which use libxentoolcore and (the
//! first two) libxentoollog. Static archives, so that the guest binary built with
//! `+crt-static` stays fully static; they are built as position-independent code, so
//! they link into static-pie and ordinary PIE executables alike.
//!
//! `YASMIN_XEN_LIB_DIR` overrides where the archives are looked for (default
//! `/usr/lib/<arch>-linux-gnu`).

use std::env;
use std::path::Path;

const LIBS: [&str; 6] = [
    "xenvchan",
    "xengnttab",
    "xenevtchn",
    "xenstore",
    "xentoolcore",
    "xentoollog",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=YASMIN_XEN_LIB_DIR");
    if env::var_os("CARGO_FEATURE_VCHAN").is_none() {
        return;
    }
    let dir = env::var("YASMIN_XEN_LIB_DIR").unwrap_or_else(|_| {
        let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH");
        format!("/usr/lib/{arch}-linux-gnu")
    });
    for lib in LIBS {
        let a = Path::new(&dir).join(format!("lib{lib}.a"));
        if !a.is_file() {
            panic!(
                "{} not found: the vchan feature needs Xen's static libraries \
                 (Debian: apt-get install libxen-dev, see tools/install-deps), \
                 or set YASMIN_XEN_LIB_DIR",
                a.display()
            );
        }
        println!("cargo:rerun-if-changed={}", a.display());
    }
    println!("cargo:rustc-link-search=native={dir}");
    for lib in LIBS {
        println!("cargo:rustc-link-lib=static={lib}");
    }
}
