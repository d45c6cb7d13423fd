"""Turning text into vectors and queries into ranked cases."""
