"""Synthetic chest X-ray phantoms with known findings: cxr_tf's embedded default data set.

``anatomy`` draws a patient's chest, ``findings`` one renderer per finding, ``acquisition`` the
exposure, ``generate`` plans patients and draws images, ``writers`` lays them out as NIH,
CheXpert or class folders, ``dataset`` writes a whole set; ``python -m cxr_tf.synth`` is the CLI.
"""
