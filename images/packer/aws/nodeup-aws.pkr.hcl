# A nodeup node AMI (amazon-ebs): start from the distribution's official AMI (Debian 12 or Ubuntu
# 24.04, amd64 or arm64), upload the nodeup binary and a bake config, run `nodeup bake`
# (../scripts/bake.sh), snapshot. Credentials come from the usual AWS environment/profile.
#
#   packer build -var bake_config=bake.yaml -var aws_region=eu-west-1 images/packer/aws

variable "aws_region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type        = string
  default     = ""
  description = "Build instance type (default: t3.medium on amd64, t4g.medium on arm64)."
}

variable "subnet_id" {
  type    = string
  default = ""
}

variable "ami_users" {
  type        = list(string)
  default     = []
  description = "Account IDs the AMI is shared with."
}

locals {
  # Official images: Debian's cloud team account and Canonical's.
  ami_owner = { "debian-12" = "136693071363", "ubuntu-24.04" = "099720109477" }
  ami_name = {
    "debian-12"    = { amd64 = "debian-12-amd64-*", arm64 = "debian-12-arm64-*" }
    "ubuntu-24.04" = { amd64 = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*", arm64 = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*" }
  }
  ssh_user     = { "debian-12" = "admin", "ubuntu-24.04" = "ubuntu" }
  default_type = { amd64 = "t3.medium", arm64 = "t4g.medium" }
  aws_arch     = { amd64 = "x86_64", arm64 = "arm64" }
}

source "amazon-ebs" "node" {
  region                 = var.aws_region
  skip_region_validation = true
  instance_type          = var.instance_type != "" ? var.instance_type : local.default_type[var.arch]
  subnet_id              = var.subnet_id
  ssh_username           = local.ssh_user[var.distro]
  ami_name               = "${local.image_name}-${local.build_stamp}"
  ami_description        = "nodeup ${var.distro} ${var.arch} node image for Kubernetes ${var.kubernetes_version}"
  ami_users              = var.ami_users
  source_ami_filter {
    filters = {
      name                  = local.ami_name[var.distro][var.arch]
      architecture          = local.aws_arch[var.arch]
      "virtualization-type" = "hvm"
      "root-device-type"    = "ebs"
    }
    owners      = [local.ami_owner[var.distro]]
    most_recent = true
  }
  tags = {
    Name                = local.image_name
    "nodeup/distro"     = var.distro
    "nodeup/arch"       = var.arch
    "nodeup/kubernetes" = var.kubernetes_version
  }
}

build {
  sources = ["source.amazon-ebs.node"]

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
