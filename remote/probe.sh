# gpu-kata-installer host probe, format 1.
# Reads the facts GPU passthrough depends on from a host root ($1, default /) and prints
# them as tagged lines for remote/probe.py. POSIX sh and shell builtins only: no Python,
# no forks in the common path (one sshd session probes a host without starting a process
# per file, and 100 hosts probed at once do not drown the machine in processes). Never writes anything.
#
# Output lines: "@<tag> <args>"; file contents follow "@file <path>" as "|<line>" lines
# up to "@end" ("@nonl" when the last line had no newline). Paths are relative to the root.

R=${1:-/}
case $R in */) ;; *) R=$R/ ;; esac
export LC_ALL=C
cd / || exit 1
printf '@probe 1\n'
printf '@root %s\n' "$R"

# emit PATH [TAG]: a file's lines under "@file" (or TAG, e.g. "@backup")
emit() {
  f=$R$1
  if [ -f "$f" ] && [ -r "$f" ]; then
    printf '%s %s\n' "${2:-@file}" "$1"
    l=
    while IFS= read -r l; do printf '|%s\n' "$l"; l=; done < "$f"
    if [ -n "$l" ]; then printf '|%s\n@nonl\n' "$l"; fi
    printf '@end\n'
  elif [ -e "$f" ]; then
    printf '@unreadable %s\n' "$1"
  else
    printf '@missing %s\n' "$1"
  fi
}

# First block of /proc/cpuinfo only: one CPU describes them all, and big hosts have
# hundreds of blocks.
emit_first_block() {
  f=$R$1
  if [ -f "$f" ] && [ -r "$f" ]; then
    printf '@file %s\n' "$1"
    while IFS= read -r l; do
      [ -z "$l" ] && break
      printf '|%s\n' "$l"
    done < "$f"
    printf '@end\n'
  else
    printf '@missing %s\n' "$1"
  fi
}

emit_glob() {
  for g in "$R"$1; do
    [ -f "$g" ] && emit "${g#"$R"}"
  done
}

# A relative symlink's last component, without readlink: cd -P resolves it (builtin).
# Captured trees sometimes store a link as a small file holding its target; read that.
link() {
  if [ -L "$2" ]; then
    if cd -P "$2" 2>/dev/null; then
      printf '@link %s %s\n' "$1" "${PWD##*/}"
      cd /
    else
      v=$(readlink "$2" 2>/dev/null)
      printf '@link %s %s\n' "$1" "${v##*/}"
    fi
  elif [ -f "$2" ] && [ -r "$2" ]; then
    v=
    IFS= read -r v < "$2" || :
    case $v in */*) printf '@link %s %s\n' "$1" "${v##*/}" ;; esac
  fi
}

emit etc/os-release
emit etc/hostname
emit proc/sys/kernel/hostname
emit proc/sys/kernel/osrelease
emit proc/sys/kernel/random/boot_id
emit proc/version
emit proc/cmdline
emit_first_block proc/cpuinfo
emit proc/modules
emit etc/default/grub
emit_glob 'etc/default/grub.d/*.cfg'
emit_glob 'etc/modprobe.d/*.conf'
emit_glob 'etc/modules-load.d/*.conf'
emit etc/modules
# The kubelet's settings where each distribution keeps them (remote/kubelet.py): kubeadm,
# k0s (v1.33+, then up to v1.32), MicroK8s's flags file, k3s and RKE2 drop-in folders.
emit var/lib/kubelet/config.yaml
emit run/k0s/kubelet/config.yaml
emit var/lib/k0s/kubelet-config.yaml
emit var/snap/microk8s/current/args/kubelet
emit_glob 'var/lib/rancher/k3s/agent/etc/kubelet.conf.d/*.conf'
emit_glob 'var/lib/rancher/rke2/agent/etc/kubelet.conf.d/*.conf'
emit proc/sys/kernel/arch
emit sys/module/kvm_intel/parameters/tdx
emit sys/module/kvm_amd/parameters/sev
emit sys/module/kvm_amd/parameters/sev_snp
emit sys/module/vfio_pci/parameters/ids
emit_glob 'boot/loader/entries/*.conf'

for p in dev/kvm dev/vfio/vfio sys/module/vfio_pci sys/module/vfio sys/kernel/iommu_groups \
         etc/containerd/config.toml run/containerd/containerd.sock \
         var/run/crio/crio.sock run/crio/crio.sock sys/firmware/efi sys/module/nvgrace_gpu_vfio_pci \
         var/snap/microk8s var/lib/k0s var/lib/rancher/rke2 var/lib/rancher/k3s; do
  [ -e "$R$p" ] && printf '@exists %s\n' "$p"
done

for x in "$R"sys/bus/pci/drivers/*; do
  [ -d "$x" ] && printf '@driver %s\n' "${x##*/}"
done
for x in "$R"dev/vfio/*; do
  [ -e "$x" ] && printf '@vfio %s\n' "${x##*/}"
done
for x in "$R"var/run/cdi/* "$R"run/cdi/* "$R"etc/cdi/*; do
  [ -f "$x" ] && printf '@cdi %s\n' "${x#"$R"}"
done
# The Kata sandbox device plugin's own specs, whole (a few hundred bytes each): verification
# checks that they list every GPU's IOMMU group.
emit_glob 'var/run/cdi/nvidia.com-*.yaml'
for x in "$R"run/nvidia/validations/*; do
  [ -e "$x" ] && printf '@validation %s\n' "${x##*/}"
done
for t in update-grub grub-mkconfig grub2-mkconfig grubby udevadm update-initramfs dracut \
         systemctl modprobe; do
  for d in usr/local/sbin usr/local/bin usr/sbin usr/bin sbin bin; do
    if [ -x "$R$d/$t" ]; then printf '@tool %s\n' "$t"; break; fi
  done
done

# vfio-pci shipped as a module or built in (only looked for when not already visible).
rel=
[ -r "$R"proc/sys/kernel/osrelease ] && { IFS= read -r rel < "$R"proc/sys/kernel/osrelease || :; }
if [ -n "$rel" ] && [ -d "$R"lib/modules/"$rel" ] && [ ! -e "$R"sys/module/vfio_pci ]; then
  for k in "$R"lib/modules/"$rel"/kernel/drivers/vfio/pci/vfio-pci.ko*; do
    [ -e "$k" ] && printf '@exists %s\n' "${k#"$R"}"
  done
  if [ -r "$R"lib/modules/"$rel"/modules.builtin ]; then
    while IFS= read -r l; do
      case $l in */vfio-pci.ko) printf '@builtin %s\n' "$l" ;; esac
    done < "$R"lib/modules/"$rel"/modules.builtin
  fi
fi

if [ -d "$R"sys/kernel/iommu_groups ]; then
  for m in "$R"sys/kernel/iommu_groups/*/devices/*; do
    [ -e "$m" ] || [ -L "$m" ] || continue
    g=${m%/devices/*}
    printf '@group %s %s\n' "${g##*/}" "${m##*/}"
  done
fi

# gr: a Grace superchip GPU was seen (its IDs: remote/gpu_models.py GRACE_IDS, kept equal
# by a test); sw: an NVSwitch. Either one asks for a few more reads below.
gr= sw=
for d in "$R"sys/bus/pci/devices/*; do
  [ -d "$d" ] || continue
  printf '@dev %s\n' "${d##*/}"
  ven=
  for a in vendor device class subsystem_vendor subsystem_device driver_override numa_node; do
    if [ -r "$d/$a" ]; then
      v=
      IFS= read -r v < "$d/$a" || :
      printf '@attr %s %s\n' "$a" "$v"
      case $a:$ven:$v in
        vendor:*) ven=$v ;;
        device:0x10de:0x2342|device:0x10de:0x2345|device:0x10de:0x2348|\
        device:0x10de:0x2941|device:0x10de:0x31c2) gr=1 ;;
        class:0x10de:0x0680*) sw=1 ;;
      esac
    fi
  done
  link driver "$d/driver"
  link iommu_group "$d/iommu_group"
done

# Grace GPUs go to VMs through the vfio variant nvgrace_gpu_vfio_pci: is it there? Loaded,
# it shows in proc/modules and sys/bus/pci/drivers above; else as a module file or built in.
if [ -n "$gr" ] && [ -n "$rel" ] && [ ! -e "$R"sys/module/nvgrace_gpu_vfio_pci ]; then
  for k in "$R"lib/modules/"$rel"/kernel/drivers/vfio/pci/nvgrace-gpu/nvgrace-gpu-vfio-pci.ko*; do
    [ -e "$k" ] && printf '@exists %s\n' "${k#"$R"}"
  done
  if [ -r "$R"lib/modules/"$rel"/modules.builtin ]; then
    while IFS= read -r l; do
      case $l in */nvgrace-gpu-vfio-pci.ko) printf '@builtin %s\n' "$l" ;; esac
    done < "$R"lib/modules/"$rel"/modules.builtin
  fi
fi

# NVSwitches: the host side of Fabric Manager. With Kata it must run in the guest; on the
# host it holds the NVSwitches through the host driver. Unit (masked when linked to
# /dev/null), its .wants links (enabled), the binary, running nv-fabricmanager processes.
if [ -n "$sw" ]; then
  printf '@fm looked\n'
  p=etc/systemd/system/nvidia-fabricmanager.service
  if [ -L "$R$p" ]; then
    v=$(readlink "$R$p" 2>/dev/null)
    case $v in /dev/null) printf '@fm masked %s\n' "$p" ;; *) printf '@fm unit %s\n' "$p" ;; esac
  elif [ -f "$R$p" ]; then
    printf '@fm unit %s\n' "$p"
  fi
  # the package's unit: the first of these (one file on a merged-/usr host)
  for p in lib/systemd/system/nvidia-fabricmanager.service \
           usr/lib/systemd/system/nvidia-fabricmanager.service; do
    if [ -f "$R$p" ]; then printf '@fm unit %s\n' "$p"; break; fi
  done
  for w in "$R"etc/systemd/system/*.wants/nvidia-fabricmanager.service; do
    if [ -e "$w" ] || [ -L "$w" ]; then printf '@fm enabled %s\n' "${w#"$R"}"; fi
  done
  for b in usr/bin/nv-fabricmanager usr/sbin/nv-fabricmanager usr/local/bin/nv-fabricmanager; do
    if [ -x "$R$b" ]; then printf '@fm binary %s\n' "$b"; break; fi
  done
  for c in "$R"proc/[0-9]*/comm; do
    n=
    { IFS= read -r n < "$c"; } 2>/dev/null || :
    case $n in nv-fabricmanage*) p=${c%/comm}; printf '@fm pid %s\n' "${p##*/}" ;; esac
  done
fi
# What the installer's host fixes changed (remote/fixes/base.py): the backup each one left,
# <file>.gpu-kata-installer.<fix>.bak (the file before, whole) or .absent (the fix created the
# file), and the file as it is now, in every folder a fix edits (remote/fixes/revert.py
# BACKUP_DIRS, kept equal by a test). Only the installer writes these names.
for d in etc etc/default etc/default/grub.d etc/modprobe.d etc/modules-load.d var/lib/kubelet \
         run/k0s/kubelet var/lib/k0s var/snap/microk8s/current/args \
         var/lib/rancher/k3s/agent/etc/kubelet.conf.d \
         var/lib/rancher/rke2/agent/etc/kubelet.conf.d boot/loader/entries; do
  for b in "$R$d"/*.gpu-kata-installer.*.bak "$R$d"/*.gpu-kata-installer.*.absent; do
    [ -f "$b" ] || continue
    b=${b#"$R"}
    emit "$b" @backup
    emit "${b%.gpu-kata-installer.*}"
  done
done
printf '@done\n'
