"""Identification: name the person (or thing) in an image from a labelled gallery, and measure it."""
