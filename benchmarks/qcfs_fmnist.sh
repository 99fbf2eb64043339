#!/usr/bin/env bash
# Issue 21: low-latency conversion on full Fashion-MNIST (60k training images).
#   bash benchmarks/qcfs_fmnist.sh NET train      trains (or resumes) the QCFS ANN and the plain ReLU ANN of NET
#   bash benchmarks/qcfs_fmnist.sh NET target     QCFS conversion on all 10,000 test images, T = 1..64, with the
#                                                 default (signed) neurons and without the signed correction
#   bash benchmarks/qcfs_fmnist.sh NET norms      qcfs, channel, max and SPIKE-NORM side by side on the QCFS ANN,
#                                                 channel, max and SPIKE-NORM on the ReLU ANN: the same neuron for
#                                                 all, first 2,000 test images (to fit the 2-core budget)
# NET is vgg or resnet (configs/ann_fmnist_NET_qcfs.yaml). One torch thread; hours on 2 CPU cores.
set -euo pipefail
net=${1:?vgg or resnet}
step=${2:?train, target or norms}
export OMP_NUM_THREADS=1
ds=.venv/bin/deepspike
qcfs=runs/fmnist_${net}_qcfs
relu=runs/fmnist_${net}_relu
neuron=(--encoding direct --reset subtract --initial-membrane 0.5 --readout membrane --spike-value threshold --signed)
case $step in
  train)
    $ds train configs/ann_fmnist_${net}_qcfs.yaml --out $qcfs
    $ds train configs/ann_fmnist_${net}_qcfs.yaml method.activation=relu --out $relu ;;
  target)
    $ds convert $qcfs --norm qcfs --timesteps 64 --out ${qcfs}_snn --quiet
    $ds convert $qcfs --norm qcfs --no-signed --timesteps 64 --out ${qcfs}_snn_unsigned --quiet ;;
  norms)
    $ds convert $qcfs --norm qcfs,channel,max,spike --timesteps 64 --calib-timesteps 64 --limit 2000 "${neuron[@]}" \
      --out ${qcfs}_norms --quiet
    $ds convert $relu --norm channel,max,spike --timesteps 64 --calib-timesteps 64 --limit 2000 "${neuron[@]}" \
      --out ${relu}_norms --quiet ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac
