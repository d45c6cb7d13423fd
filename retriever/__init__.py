"""Memento's parametric case memory: a Q-scorer over (task, case) pairs that learns from rewards.

Submodules import torch; this package file does not, so `retriever.cli --help` stays fast.
model (QScorer, ScorerConfig) · data (TrainingSet, split by query) · train · evaluate ·
checkpoint (versions, gate, rollback) · scorer (serving) · online (OnlineTrainer) · jobs · cli.
"""
