"""Files in and out: safe image paths, regular-file reads and the one image decoder (``paths``,
``imaging``), atomic writes (``atomic``), output-directory claims (``claims``) and the worker pool
(``workers``): one copy of each, used by every command.

Every stage that touches the file system goes through here, so a hostile path, a FIFO posing as an image
or a decompression bomb is refused in one place for build_records, predict and explain alike.
"""
