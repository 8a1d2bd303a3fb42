# A nodeup node image built locally with QEMU from the distribution's cloud image (Debian 12 or
# Ubuntu 24.04, amd64 or arm64): boot it with a NoCloud seed served by Packer's HTTP server, upload
# the nodeup binary and a bake config, run `nodeup bake` (../scripts/bake.sh), shut down.
#
#   packer build -var bake_config=bake.yaml -var accelerator=tcg images/packer/qemu
#
# Without KVM (CI machines, nested clouds) use accelerator=tcg; it is slow but it works.

variable "accelerator" {
  type        = string
  default     = "kvm"
  description = "kvm where /dev/kvm works, tcg (software emulation) otherwise."
}

variable "base_image_url" {
  type        = string
  default     = ""
  description = "Cloud image to start from (default: the distribution's current cloud image for the arch); a local path works too."
}

variable "base_image_checksum" {
  type        = string
  default     = ""
  description = "Checksum of base_image_url, e.g. sha256:<hex> or file:<url of SUMS> (default: the distribution's SUMS file)."
}

variable "disk_size" {
  type    = string
  default = "10G"
}

variable "cpus" {
  type    = number
  default = 2
}

variable "memory" {
  type    = number
  default = 2048
}

variable "output_directory" {
  type    = string
  default = ""
}

variable "extra_qemuargs" {
  type        = list(list(string))
  default     = []
  description = "More QEMU arguments, e.g. -kernel/-initrd/-append to boot a base image that has no bootloader."
}

variable "cloud_init_dir" {
  type        = string
  default     = ""
  description = "NoCloud seed served to the build VM (default: ./cloud-init, which creates the packer user)."
}

variable "ssh_username" {
  type        = string
  default     = "packer"
  description = "Build login; with root, commands run without sudo."
}

# Not marked sensitive: it is a published build-only password, and Packer would mask the word
# "packer" in every log line.
variable "ssh_password" {
  type    = string
  default = "packer"
}

variable "build_cleanup" {
  type        = string
  default     = "rm -f /etc/sudoers.d/90-cloud-init-users; userdel -f -r packer; echo PasswordAuthentication no >/etc/ssh/sshd_config.d/50-cloud-init.conf"
  description = "Shell run as root right before power-off: removes the build login from the image and turns password SSH off again (the seed's ssh_pwauth turned it on)."
}

variable "aarch64_firmware" {
  type        = string
  default     = "/usr/share/AAVMF/AAVMF_CODE.fd"
  description = "UEFI firmware for arm64 guests (Debian package qemu-efi-aarch64)."
}

locals {
  cloud_images = {
    "debian-12" = {
      amd64 = ["https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2", "file:https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS"]
      arm64 = ["https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-arm64.qcow2", "file:https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS"]
    }
    "ubuntu-24.04" = {
      amd64 = ["https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img", "file:https://cloud-images.ubuntu.com/releases/noble/release/SHA256SUMS"]
      arm64 = ["https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-arm64.img", "file:https://cloud-images.ubuntu.com/releases/noble/release/SHA256SUMS"]
    }
  }
  base_url      = var.base_image_url != "" ? var.base_image_url : local.cloud_images[var.distro][var.arch][0]
  base_checksum = var.base_image_checksum != "" ? var.base_image_checksum : local.cloud_images[var.distro][var.arch][1]
  qemu_binary   = { amd64 = "qemu-system-x86_64", arm64 = "qemu-system-aarch64" }
  machine_type  = { amd64 = "pc", arm64 = "virt" }
  # NoCloud seed over Packer's HTTP server (10.0.2.2 from the guest); SSH forwarded on loopback only.
  common_args = [
    ["-cpu", "max"],
    ["-smbios", "type=1,serial=ds=nocloud-net;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/"],
    ["-netdev", "user,id=user.0,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22"],
  ]
  sudo = var.ssh_username == "root" ? "" : "sudo "
  arch_args = {
    amd64 = []
    arm64 = [["-bios", var.aarch64_firmware]]
  }
}

source "qemu" "node" {
  iso_url          = local.base_url
  iso_checksum     = local.base_checksum
  disk_image       = true
  disk_size        = var.disk_size
  format           = "qcow2"
  disk_compression = true
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  accelerator      = var.accelerator
  qemu_binary      = local.qemu_binary[var.arch]
  machine_type     = local.machine_type[var.arch]
  cpus             = var.cpus
  memory           = var.memory
  headless         = true
  http_directory   = var.cloud_init_dir != "" ? var.cloud_init_dir : "${path.root}/cloud-init"
  qemuargs         = concat(local.common_args, local.arch_args[var.arch], var.extra_qemuargs)
  ssh_username     = var.ssh_username
  ssh_password     = var.ssh_password
  ssh_timeout      = "45m"
  # Remove the build login (see cloud-init/user-data) as the last thing before powering off.
  shutdown_command = "${local.sudo}sh -c '${var.build_cleanup}; shutdown -P now'"
  output_directory = var.output_directory != "" ? var.output_directory : "output/${local.image_name}"
  vm_name          = "${local.image_name}.qcow2"
}

build {
  sources = ["source.qemu.node"]

  provisioner "file" {
    source      = local.nodeup_binary
    destination = "/tmp/nodeup"
  }
  provisioner "file" {
    source      = var.bake_config
    destination = "/tmp/nodeup-bake.yaml"
  }
  provisioner "shell" {
    inline = ["mkdir -p /tmp/nodeup-store"]
  }
  provisioner "file" {
    source      = local.state_dir
    destination = "/tmp/nodeup-store"
  }
  provisioner "shell" {
    script           = "${path.root}/../scripts/bake.sh"
    environment_vars = local.bake_env
    execute_command  = "chmod +x {{ .Path }}; ${local.sudo}env {{ .Vars }} sh '{{ .Path }}'"
  }
}
