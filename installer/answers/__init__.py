"""The answers file: its model and rules, where each value came from in the YAML, the check
names it may ignore, the chart versions it defaults to, and saving it back without losing what
the operator wrote. Pure: no cluster, no host.
"""
