"""Applying a trained model outside training: image preprocessing, prediction, export."""
