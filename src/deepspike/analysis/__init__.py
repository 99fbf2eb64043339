"""Analysis: activity monitors, energy, robustness, hardware mapping, reports, timestep sweeps.

- ``activity``: spike counts of rate nets (ANN parameters/MACs per layer: ``models.costs``).
- ``monitor.NetworkMonitor``: spikes, sparsity, spike times, decision time and synaptic ops (ACs/MACs
  from the actual spikes x fan-out, ``layers.fan_out``) of rate-coded and TTFS nets.
- ``energy``: cited pJ presets. ``hardware``: YOSO-like PE mesh mapping.
- ``quantize``/``qat``: k-bit weight quantization, post-training and quantization-aware retraining;
  ``perturb``: weight noise at an SNR, spike deletion, spike-time jitter; ``sweeps``: accuracy curves.
- ``report.analyze_run``: analysis.json + report.md + PNGs (``plots``); ``compare``: the cross-run table.
"""
