"""Pseudo-labelling: confident nearest-identity labels for unlabelled images, as a manifest to train on."""
