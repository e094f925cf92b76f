# YASMIN-rs top-level Makefile (Kbuild is read by the kernel build; this is for people).
#   make demo    set everything up, build, boot the Xen test bed and show the guests talking
#   make test    run every test (cargo workspace, module build, test-bed scenarios)
#   make         build yasmin.ko against the cached kernel, or KDIR=/path/to/your/tree
SHELL := /bin/bash
ROOT := $(CURDIR)

# Pinned kernel-side toolchain (Debian's rustc 1.85 + LLVM 19); override for your own tree.
RUSTC ?= /usr/bin/rustc
BINDGEN ?= $(shell . tools/env.sh && echo $$BINDGEN)
KDIR ?= $(shell . tools/env.sh && echo $$KERNEL_DIR)
KMAKE = PATH=/usr/lib/llvm-19/bin:$$PATH LIBCLANG_PATH=/usr/lib/llvm-19/lib \
	$(MAKE) -C $(KDIR) M=$(ROOT) LLVM=1 RUSTC=$(RUSTC) HOSTRUSTC=$(RUSTC) \
	RUSTDOC=$(dir $(RUSTC))rustdoc BINDGEN=$(BINDGEN)

.PHONY: module clean deps kernel demo test
module:
	@test -f $(KDIR)/Makefile || { echo "no kernel tree at $(KDIR): run 'make kernel' or pass KDIR=" >&2; exit 1; }
	$(KMAKE) modules

clean:
	$(KMAKE) clean
	rm -f yasmin-mod/bindings_generated.rs

deps:
	tools/install-deps

kernel: deps
	tools/build-kernel

demo:
	tools/demo

test:
	tools/test-all
