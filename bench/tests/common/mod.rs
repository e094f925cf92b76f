// SPDX-License-Identifier: GPL-2.0
//! Helpers shared by the `yasmin-bench` integration tests.

use std::process::Output;

/// Asserts that a finished command succeeded, showing its stderr otherwise.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
