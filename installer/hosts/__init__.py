"""The GPU hosts: prerequisite checks as verdicts over probed facts, the host fixes planned
from them, and how the installer reaches a host over SSH (options, secrets, a trust-on-purpose
connection test). The probe and fixes that run on the host live in the top-level `remote`
package.
"""
