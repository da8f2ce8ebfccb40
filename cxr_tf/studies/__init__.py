"""The five source studies as experiments: their grids (``grids``), the figures they reported
(``reported``), running and evaluating each arm (``runner``), phantom stand-ins for their data
(``phantoms``) and their tables in their own layout (``tables``). ``python -m cxr_tf.study`` is the CLI."""
