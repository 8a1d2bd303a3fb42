# Variables and locals every nodeup template shares (linked into each builder's folder, so each
# folder is a complete Packer configuration: `packer validate images/packer/qemu`).

variable "kubernetes_version" {
  type        = string
  default     = "v1.35.4"
  description = "Kubernetes version the image is baked for; the bake fails if the bake config's node config names another."
  validation {
    condition     = regex_replace(var.kubernetes_version, "^v[0-9]+\\.[0-9]+\\.[0-9]+$", "") == ""
    error_message = "The kubernetes_version must look like v1.35.4."
  }
}

variable "distro" {
  type        = string
  default     = "debian-12"
  description = "Base distribution: debian-12 or ubuntu-24.04."
  validation {
    condition     = contains(["debian-12", "ubuntu-24.04"], var.distro)
    error_message = "The distro must be debian-12 or ubuntu-24.04."
  }
}

variable "arch" {
  type        = string
  default     = "amd64"
  description = "CPU architecture: amd64 or arm64."
  validation {
    condition     = contains(["amd64", "arm64"], var.arch)
    error_message = "The arch must be amd64 or arm64."
  }
}

variable "nodeup_binary" {
  type        = string
  default     = ""
  description = "Local path of the nodeup binary to bake in (default: dist/nodeup-linux-<arch> of this repository)."
}

variable "bake_config" {
  type        = string
  description = "Local path of the boot config `nodeup bake` runs with (its stateStore must be reachable from the build machine, e.g. file:///tmp/nodeup-store with state_store_dir)."
}

variable "state_store_dir" {
  type        = string
  default     = ""
  description = "Optional local file:// state store directory uploaded to /tmp/nodeup-store for the bake (removed afterwards)."
}

variable "bake_args" {
  type        = string
  default     = ""
  description = "Extra `nodeup bake` flags, e.g. \"--enable-unit\"."
}

locals {
  nodeup_binary = var.nodeup_binary != "" ? var.nodeup_binary : "${path.root}/../../../dist/nodeup-linux-${var.arch}"
  state_dir     = var.state_store_dir != "" ? "${var.state_store_dir}/" : "${path.root}/../empty-store/"
  image_name    = replace("nodeup-${var.distro}-${var.arch}-k8s-${var.kubernetes_version}", ".", "-")
  build_stamp   = regex_replace(timestamp(), "[- TZ:]", "")
  bake_env = [
    "NODEUP_KUBERNETES_VERSION=${var.kubernetes_version}",
    "NODEUP_DISTRO=${var.distro}",
    "NODEUP_ARCH=${var.arch}",
    "NODEUP_BAKE_ARGS=${var.bake_args}",
  ]
}
