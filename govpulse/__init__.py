"""govpulse: live activity of Thai government agencies.

This package holds what every process shares: settings and the `govpulse` CLI.
The pipeline's parts live in the sibling top-level packages (`producers`, `streams`, …).
"""
