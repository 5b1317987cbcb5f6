"""Troubleshooting: rules that turn a cluster's state and host facts into findings ordered by
likelihood, the read-only views the wizard and headless troubleshoot share, and the support
bundle.
"""
