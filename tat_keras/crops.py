"""The names of the three crops the network reads: face, left eye, right eye.

One definition for every floor that names the inputs: the data pipeline
(which must not load Keras), the network, the export and the LiteRT runner.
This module imports nothing.
"""

INPUT_NAMES = ("face", "left_eye", "right_eye")
