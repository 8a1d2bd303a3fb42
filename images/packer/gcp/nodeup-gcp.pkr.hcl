# A nodeup node image on Google Compute Engine (googlecompute): start from the distribution's
# public image family (Debian 12 or Ubuntu 24.04, amd64 or arm64), upload the nodeup binary and a
# bake config, run `nodeup bake` (../scripts/bake.sh), create the image. Credentials come from
# Application Default Credentials (or account_file).
#
#   packer build -var bake_config=bake.yaml -var gcp_project_id=my-project images/packer/gcp

variable "gcp_project_id" {
  type = string
}

variable "gcp_zone" {
  type    = string
  default = "us-central1-a"
}

variable "machine_type" {
  type        = string
  default     = ""
  description = "Build machine type (default: e2-standard-2 on amd64, t2a-standard-2 on arm64)."
}

variable "account_file" {
  type        = string
  default     = ""
  description = "Service account key file; empty uses Application Default Credentials."
}

locals {
  image_project = { "debian-12" = "debian-cloud", "ubuntu-24.04" = "ubuntu-os-cloud" }
  image_family = {
    "debian-12"    = { amd64 = "debian-12", arm64 = "debian-12-arm64" }
    "ubuntu-24.04" = { amd64 = "ubuntu-2404-lts-amd64", arm64 = "ubuntu-2404-lts-arm64" }
  }
  default_machine = { amd64 = "e2-standard-2", arm64 = "t2a-standard-2" }
}

source "googlecompute" "node" {
  project_id              = var.gcp_project_id
  zone                    = var.gcp_zone
  account_file            = var.account_file
  machine_type            = var.machine_type != "" ? var.machine_type : local.default_machine[var.arch]
  source_image_family     = local.image_family[var.distro][var.arch]
  source_image_project_id = [local.image_project[var.distro]]
  ssh_username            = "packer"
  image_name              = "${local.image_name}-${local.build_stamp}"
  image_family            = replace("nodeup-${var.distro}-${var.arch}", ".", "-")
  image_description       = "nodeup ${var.distro} ${var.arch} node image for Kubernetes ${var.kubernetes_version}"
  image_labels = {
    nodeup-distro     = replace(var.distro, ".", "-")
    nodeup-arch       = var.arch
    nodeup-kubernetes = replace(var.kubernetes_version, ".", "-")
  }
}

build {
  sources = ["source.googlecompute.node"]

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
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} sh '{{ .Path }}'"
  }
}
