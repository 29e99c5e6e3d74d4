"""Cluster membership and leadership: which process of which node runs each singleton."""
