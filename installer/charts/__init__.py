"""The two charts: the values each version takes from the answers, the compatibility table, the
private-registry rewrite, what their pods will do to a host, what "done" means for each, and
the helm binary that installs them.
"""
