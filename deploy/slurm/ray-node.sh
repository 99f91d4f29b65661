#!/usr/bin/env bash
# One Ray node per Slurm task (started by gprune-sweep.sbatch): task 0 the head, which offers no CPUs and only
# coordinates, every other task a worker with its task's CPUs (and the GPUs Slurm gave it, which Ray finds).
# Each node keeps its sessions in a folder of its own, as tasks of one job may share a host.
set -euo pipefail
folder="${TMPDIR:-/tmp}/ray-$SLURM_JOB_ID-$SLURM_PROCID"
if [ "$SLURM_PROCID" = 0 ]; then
  exec ray start --head --node-ip-address="$RAY_HEAD_IP" --port="$RAY_PORT" --num-cpus=0 --num-gpus=0 \
    --include-dashboard=false --temp-dir="$folder" --block
fi
exec ray start --address="$RAY_HEAD_IP:$RAY_PORT" --num-cpus="${SLURM_CPUS_PER_TASK:-1}" --temp-dir="$folder" --block
