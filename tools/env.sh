# Common settings for every YASMIN build/test script. Source it: `. tools/env.sh`.
# Expensive outputs live outside the repository, keyed by their inputs, so a warm
# machine reuses them and a change of version or config rebuilds them.

YASMIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
YASMIN_CACHE=${YASMIN_CACHE:-$HOME/.cache/yasmin}

# Pinned toolchain (see ../shared/PLATFORM.md and README "Building").
KERNEL_SRC_PKG=linux-source-6.12
KERNEL_SRC_VERSION=6.12.117-1~deb12u1
KERNEL_TARBALL=/usr/src/linux-source-6.12.tar.xz
RUSTC_WEB_VERSION=1.85.0+dfsg3-1~deb12u3
BINDGEN_VERSION=0.69.5
XEN_VERSION=4.17
# The hypervisor the test bed boots is built from this Debian source (tools/build-xen): the
# version debootstrap puts in the dom0 rootfs as its toolstack (xen-utils).
XEN_SRC_VERSION=4.17.5+72-g01140da4e8-1

# Xen's development libraries for the benchmark's libvchan transport (the security update
# of the same 4.17 release; the dom0 rootfs's xen-utils are bookworm's 4.17.5).
XEN_DEV_VERSION=4.17.7+13-g2445b30a44-0+deb12u1

# Userspace programs for the test bed, one build directory per checkout: cargo decides
# freshness by file times relative to the workspace, so two checkouts sharing one target
# directory could take each other's binaries for up to date.
GUEST_TOOLS_DIR=$YASMIN_CACHE/guest-tools/$(printf %s "$YASMIN_ROOT" | sha256sum | cut -c1-12)

BINDGEN_ROOT=$YASMIN_CACHE/tools/bindgen-$BINDGEN_VERSION
BINDGEN=$BINDGEN_ROOT/bin/bindgen
export LIBCLANG_PATH=/usr/lib/llvm-19/lib

# Two kernels from the one source: the test kernel (kernel/yasmin.config plus
# kernel/debug.config: lockdep, atomic-sleep, list, object and memory debugging) and the
# production kernel (kernel/yasmin.config alone). YASMIN_KERNEL=test|prod picks one. The
# default is prod (the demo, the benchmark, builds for a real host); `make test` boots its
# guests on the test kernel (tools/test-all).
YASMIN_KERNEL=${YASMIN_KERNEL:-prod}
case $YASMIN_KERNEL in
    test) KERNEL_FRAGMENTS=("$YASMIN_ROOT/kernel/yasmin.config" "$YASMIN_ROOT/kernel/debug.config") ;;
    prod) KERNEL_FRAGMENTS=("$YASMIN_ROOT/kernel/yasmin.config") ;;
    *) echo "YASMIN_KERNEL must be test or prod, not '$YASMIN_KERNEL'" >&2; return 1 2>/dev/null || exit 1 ;;
esac
export YASMIN_KERNEL
# The kernel cache key: source package version + hash of the config fragments (and of
# KERNEL_BUILD_REV, bumped when tools/build-kernel changes what it produces).
KERNEL_BUILD_REV=1
kernel_key() {
    local h
    h=$( (cat "${KERNEL_FRAGMENTS[@]}"; echo "rev $KERNEL_BUILD_REV") | sha256sum | cut -c1-12)
    echo "linux-${KERNEL_SRC_VERSION//[~+]/_}-$h"
}
KERNEL_DIR=$YASMIN_CACHE/kernel/$(kernel_key)/linux
# The test build of the module (test hooks, profile) for the kernel in use.
TESTBED_MODULE=$YASMIN_ROOT/target/testbed-module/$YASMIN_KERNEL/yasmin.ko

# The test bed's dom0 may boot another flavour than the guests (YASMIN_DOM0_KERNEL,
# default: the guests' one). `make test` boots test-kernel guests on a production dom0:
# the guests run yasmin.ko under lockdep and memory debugging, while dom0's toolstack
# work (creating and destroying domains, backends) is not slowed by the debugging.
YASMIN_DOM0_KERNEL=${YASMIN_DOM0_KERNEL:-$YASMIN_KERNEL}
export YASMIN_DOM0_KERNEL
# flavour_var FLAVOUR VAR: VAR (KERNEL_DIR or TESTBED_MODULE) for that kernel flavour.
flavour_var() {
    (YASMIN_KERNEL=$1; . "$YASMIN_ROOT/tools/env.sh" && echo "${!2}")
}

# Kernel-side Rust must be Debian's rustc 1.85 (matches its rust-src), never rustup's.
KMAKE_VARS=(LLVM=1 RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc "BINDGEN=$BINDGEN")
kmake() { PATH=/usr/lib/llvm-19/bin:/usr/sbin:/usr/bin:/sbin:/bin make "${KMAKE_VARS[@]}" "$@"; }

log() { printf '[yasmin %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Userspace Rust (workspace crates, guest tools) uses the rustup toolchain.
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) [ -d "$HOME/.cargo/bin" ] && PATH=$PATH:$HOME/.cargo/bin ;; esac
