# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
# Shared by vm-run and vm-test: host packages, the guest kernel and the
# guest's initramfs. Source it; it defines functions only.

# The Debian packages live in one list, in scripts/setup.
vm_ensure_packages() {
	"$REPO/scripts/setup"
}

# The newest Debian kernel that has both an image and headers.
vm_kernel_version() {
	local d v found=()
	for d in /lib/modules/*/build; do
		v=${d#/lib/modules/}; v=${v%/build}
		[ -f "/boot/vmlinuz-$v" ] && found+=("$v")
	done
	[ ${#found[@]} -gt 0 ] || { echo "vm: no kernel with both /boot/vmlinuz-V and /lib/modules/V/build" >&2; exit 1; }
	printf '%s\n' "${found[@]}" | sort -V | tail -1
}

# Modules (with their dependencies, in load order) the guest needs for 9p.
vm_module_paths() {
	local kver=$1 m dep line
	local -A seen=()
	for m in virtio_pci 9pnet_virtio 9p; do
		# (None for the debug kernel, which has them built in.)
		line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "/lib/modules/$kver/modules.dep" 2>/dev/null) || continue
		# modules.dep lists dependencies so that the last loads first.
		for dep in $(echo "${line#*:}" | tr ' ' '\n' | tac) "${line%%:*}"; do
			[ -n "$dep" ] && [ -z "${seen[$dep]:-}" ] || continue
			seen[$dep]=1
			echo "$dep"
		done
	done
}

# Copy a binary and the shared libraries it links into root $2.
vm_copy_with_libs() {
	local bin=$1 root=$2 lib
	mkdir -p "$root$(dirname "$bin")"
	cp -L "$bin" "$root$bin"
	for lib in $(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# Build (or reuse) the guest initramfs; prints its path.
vm_initramfs() {
	local kver=$1 key out root m lib
	key=$(cat "$REPO/scripts/vm-lib.sh" "$REPO/scripts/vm-init" | sha256sum | cut -c1-16)
	out="$CACHE/initramfs-$kver-$key.cpio"
	if [ -f "$out" ]; then echo "$out"; return; fi
	mkdir -p "$CACHE"
	rm -f "$CACHE"/initramfs-*.cpio
	root=$(mktemp -d "$CACHE/root.XXXXXX")
	chmod 0755 "$root"
	mkdir -p "$root"/{bin,sbin,etc/udev/rules.d,proc,sys,dev,run,tmp,mnt,root,lib/modules,lib/systemd,home/neuron-user}
	cp /bin/busybox "$root/bin/busybox"
	: > "$root/lib/modules/load-order"
	for m in $(vm_module_paths "$kver"); do
		cp "/lib/modules/$kver/$m" "$root/lib/modules/"
		basename "$m" >> "$root/lib/modules/load-order"
	done
	# udevd is udevadm under another name.
	vm_copy_with_libs "$(command -v udevadm)" "$root"
	ln -s "$(command -v udevadm)" "$root/lib/systemd/systemd-udevd"
	# Libraries that static-stdlib Swift and C programs of the project need.
	for lib in libstdc++.so.6 libgcc_s.so.1 libm.so.6 libudev.so.1 libz.so.1 libcrypto.so.3; do
		lib=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ { print $NF; exit }')
		[ -n "$lib" ] && vm_copy_with_libs "$lib" "$root"
	done
	ln -s lib "$root/lib64" 2>/dev/null || true
	[ -e "$root/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib/"
	cat > "$root/etc/passwd" <<-'EOF'
	root:x:0:0:root:/root:/bin/sh
	neuron-user:x:1000:1000:member of group neuron:/home/neuron-user:/bin/sh
	outsider:x:1001:1001:not in group neuron:/tmp:/bin/sh
	EOF
	cat > "$root/etc/group" <<-'EOF'
	root:x:0:
	neuron-user:x:1000:
	outsider:x:1001:
	neuron:x:990:neuron-user
	EOF
	chown 1000:1000 "$root/home/neuron-user"
	cp "$REPO/scripts/vm-init" "$root/init"
	chmod 0755 "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet) > "$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$root"
	echo "$out"
}

# True when a kernel log shows a splat. The stack dumps of allocation
# failures (warn_alloc: fault injection makes them on purpose) are not.
VM_SPLAT_RE='WARNING:|BUG:|Oops|general protection fault|Call Trace:|kernel BUG|UBSAN:|KASAN:|refcount_t:|list_(add|del) corruption|INFO: task .* blocked|soft lockup|hard LOCKUP|RCU stall|self-detected stall|detected stalls on CPU|possible circular locking|ODEBUG:'

# The dmesg lines that count, without the allocation-failure reports that
# fault injection provokes on purpose.
vm_kernel_splat_lines() {
	awk 'skip { if (/<\/TASK>/) skip = 0; next }
	     /page allocation failure:|vmalloc error:/ { skip = 1; next }
	     { print }' "$1"
}

vm_kernel_splat() {
	vm_kernel_splat_lines "$1" | grep -qE "$VM_SPLAT_RE"
}

# The first splat and the 15 lines after it (CI shows a log's tail: this
# goes last so that the cause is in it).
vm_kernel_splat_report() {
	vm_kernel_splat_lines "$1" | grep -m1 -A15 -E "$VM_SPLAT_RE"
}
