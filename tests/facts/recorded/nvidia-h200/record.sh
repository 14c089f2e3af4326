#!/bin/bash
# Records real nvidia-smi / toolkit output in the format of shared/reference/recorded.
rec() { local name="$1"; shift; { echo "# command: $*"; out=$(bash -c "$*" 2>&1); rc=$?; echo "# exit: $rc"; printf '%s\n' "$out"; } > "$OUT/$name.txt"; }
rec nvidia-smi--query-gpu "nvidia-smi --query-gpu=index,name,uuid,memory.total,memory.used,driver_version --format=csv,noheader,nounits"
rec nvidia-smi-banner "nvidia-smi"
rec nvidia-smi-q "nvidia-smi -q"
rec nvidia-smi-L "nvidia-smi -L"
rec nvidia-smi--query-gpu-mig "nvidia-smi --query-gpu=index,name,uuid,memory.total,memory.used,driver_version,mig.mode.current --format=csv,noheader,nounits"
rec nvidia-ctk-version "nvidia-ctk --version"
rec docker-info-runtimes "docker info --format '{{json .Runtimes}}'"
rec os-release "cat /etc/os-release"
rec which "command -v nvidia-smi nvidia-ctk docker tailscale firewall-cmd"
ls -la $OUT
