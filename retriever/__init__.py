"""Memento's parametric case memory, as the prior of a contextual bandit over cases.

contract (what the bank, the server and the retriever share; torch-free) · policy (Thompson
sampling over each case's evidence) · model (PriorHead) · data (Memento pairs, split by query) ·
train · evaluate (AUC) · ope (policy value, the promotion gate) · checkpoint (torch files) ·
versions (rollback, pruning; torch-free) · scorer (numpy serving) · online (OnlineTrainer;
torch-free) · job (one training run, a subprocess) · jobs (offline jobs) · bank (InMemoryBank) ·
cli. This package file imports nothing, so `retriever.cli --help` stays fast.
"""
