"""Few-shot evaluation: N-way K-shot episodes of a labelled set, and Omniglot's official one-shot runs."""
