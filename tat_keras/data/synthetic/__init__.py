"""A synthetic twin of GazeCapture, rendered in its on-disk layout.

The renderer writes recordings exactly as GazeCapture publishes them, through
`tat_keras.data.gaze_capture.layout`, so the `gaze_capture` TFDS builder
prepares them with no special case. The images come from the geometry of a
person looking at a phone or tablet, stage by stage:

- `roster`: the devices (GazeCapture's iPhones and iPads, from
  `tat_keras.data.devices`) and how they are held;
- `subjects`: eyes, lids, face, colours and glasses of a person;
- `scene`: where the subject holds the device, the head pose, the lighting
  and the camera of a recording;
- `plan`: the dots and, frame by frame, where the eyes look, head motion,
  blinks, detector errors, exposure drift and shake;
- `geometry`: the pinhole projection of head and eyes;
- `render`: the face, eyes and glasses, then the camera's noise, exposure,
  clipping and blur;
- `detector`: face and eye boxes with correlated errors;
- `writer`: recordings and datasets on disk;
- `config`: `SyntheticConfig` and its presets.

NumPy and Pillow only: importing it loads neither TensorFlow nor Keras.

Example:

>>> import tempfile
>>> config = SyntheticConfig(num_train_subjects=1, num_val_subjects=0,
...                          num_test_subjects=0, dots_per_recording=1,
...                          frames_per_dot=2)
>>> summary = render_dataset(tempfile.mkdtemp(), config, progress=False)
>>> summary["frames"]
2
"""

from tat_keras import submodules
from tat_keras.data.synthetic.config import LIGHTING_REGIMES
from tat_keras.data.synthetic.config import NUISANCE_MODES
from tat_keras.data.synthetic.config import PRESETS
from tat_keras.data.synthetic.config import SPLITS
from tat_keras.data.synthetic.config import SyntheticConfig
from tat_keras.data.synthetic.config import with_overrides
from tat_keras.data.synthetic.scene import sample_conditions
from tat_keras.data.synthetic.subjects import sample_subject
from tat_keras.data.synthetic.writer import SUMMARY_FILE
from tat_keras.data.synthetic.writer import benchmark
from tat_keras.data.synthetic.writer import count_frames
from tat_keras.data.synthetic.writer import draw_recording
from tat_keras.data.synthetic.writer import recording_rng
from tat_keras.data.synthetic.writer import recording_splits
from tat_keras.data.synthetic.writer import render_dataset
from tat_keras.data.synthetic.writer import render_recording

__getattr__ = submodules.on_first_use(__name__)
