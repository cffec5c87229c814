"""Tuning modes: which encoder weights train (`model/tuning=<name>`), and how each mode saves and exports itself.

`base` holds the contract (`Tuning`, `TrainableEncoder`); `modes` the frozen, full and partial modes; `peft_methods`
the peft-library methods (LoRA, AdaLoRA, IA3, prefix, ...); `adapters` Houlsby bottleneck adapters.
"""
