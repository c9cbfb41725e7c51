"""The learning engine: guard thresholds from recorded decisions (task analytics.recommend_thresholds): being built."""
