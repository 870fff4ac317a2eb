"""Nonlinear fine-tuning workloads (THEORY.md §5): ReLU students on teacher tasks, a
small transformer on modular arithmetic, a ResNet on CIFAR-100.  Pure torch: config +
seed in, numbers out; no Ray, database or HTTP code in this package."""
