"""tat_keras: TAT and DwO gaze estimation (Guo et al. 2019) in Keras 3.

Importing the package registers its Keras objects, so a saved `.keras` model
loads with `keras.models.load_model(path)` and no `custom_objects`.
"""

from tat_keras import metrics
from tat_keras import models
from tat_keras import ordinal

__version__ = "0.1.0"
