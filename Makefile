# YASMIN-rs top-level Makefile (Kbuild is read by the kernel build; this is for people).
#   make demo    set everything up, build, boot the Xen test bed and show the guests talking
#   make test    run every test (cargo workspace, module build, test-bed scenarios)
#   make         build yasmin.ko against the cached kernel, or KDIR=/path/to/your/tree
#   make module-test   the test build (test hooks + data-path profile), in target/testbed-module/
SHELL := /bin/bash
ROOT := $(CURDIR)

# Pinned kernel-side toolchain (Debian's rustc 1.85 + LLVM 19); override for your own tree.
RUSTC ?= /usr/bin/rustc
BINDGEN ?= $(shell . tools/env.sh && echo $$BINDGEN)
KDIR ?= $(shell . tools/env.sh && echo $$KERNEL_DIR)
KMAKE_IN = PATH=/usr/lib/llvm-19/bin:$$PATH LIBCLANG_PATH=/usr/lib/llvm-19/lib \
	$(MAKE) -C $(KDIR) M=$(1) LLVM=1 RUSTC=$(RUSTC) HOSTRUSTC=$(RUSTC) \
	RUSTDOC=$(dir $(RUSTC))rustdoc BINDGEN=$(BINDGEN)
KMAKE = $(call KMAKE_IN,$(ROOT))
# The test build gets its own copy of the sources (same layout), one per kernel flavour
# (YASMIN_KERNEL, see tools/env.sh), so builds never share objects: Kbuild writes them
# next to the sources.
TEST_OUT ?= $(dir $(shell . tools/env.sh && echo $$TESTBED_MODULE))
MODULE_SOURCES = Kbuild $(shell find yasmin-mod ring/src xenstore-watch/src/control \
	\( -name '*.rs' -o -name '*.c' -o -name '*.h' \) ! -name bindings_generated.rs)

.PHONY: module module-test clean deps kernel demo test
module:
	@test -f $(KDIR)/Makefile || { echo "no kernel tree at $(KDIR): run 'make kernel' or pass KDIR=" >&2; exit 1; }
	$(KMAKE) modules

module-test:
	@test -f $(KDIR)/Makefile || { echo "no kernel tree at $(KDIR): run 'make kernel' or pass KDIR=" >&2; exit 1; }
	@mkdir -p $(TEST_OUT) && cp -p --parents -u $(MODULE_SOURCES) $(TEST_OUT)/
	$(call KMAKE_IN,$(TEST_OUT)) YASMIN_TEST=1 modules

clean:
	$(KMAKE) clean
	rm -f yasmin-mod/bindings_generated.rs
	rm -rf $(ROOT)/target/testbed-module

deps:
	tools/install-deps

kernel: deps
	tools/build-kernel

demo:
	tools/demo

test:
	tools/test-all
