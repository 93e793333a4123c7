"""The device roster: which phones and tablets subjects hold, and how.

GazeCapture was recorded mostly on iPhones (the 4S, 5, 5S, 6, 6S and the 6
Plus models) with a smaller share of iPads. Phones were held upright or in
either landscape orientation, never upside down; only iPads were also used
upside down (`screen.json` `Orientation` 2). The screen and camera of each
device come from `tat_keras.data.devices` (manufacturers' published
dimensions).

Example:

>>> import numpy as np
>>> from tat_keras.data.synthetic import config as config_lib
>>> config = config_lib.SyntheticConfig()
>>> device = choose_device(np.random.default_rng(0), config)
>>> device.name in GAZECAPTURE_ROSTER
True
>>> float(orientation_probabilities(config, devices_lib.DEVICES["iPhone 6"])[1])
0.0
"""

import numpy as np

from tat_keras.data import devices as devices_lib

# Relative weight of each device within its type (phone or tablet): an
# approximate GazeCapture-like mix, the iPhone 6 and 5S most common.
GAZECAPTURE_ROSTER = {
    "iPhone 4S": 0.06,
    "iPhone 5": 0.06,
    "iPhone 5S": 0.18,
    "iPhone 6": 0.38,
    "iPhone 6S": 0.16,
    "iPhone 6 Plus": 0.11,
    "iPhone 6S Plus": 0.05,
    "iPad 2": 0.2,
    "iPad Air": 0.25,
    "iPad Air 2": 0.35,
    "iPad mini": 0.2,
}


def choose_device(rng, config):
    """Draws the device of one recording.

    A tablet with probability `config.tablet_fraction` (when the config lists
    both kinds), then a device of that kind by its roster weight (devices
    outside `GAZECAPTURE_ROSTER` weigh as much as its lightest entry).

    Args:
      rng: np.random.Generator.
      config: SyntheticConfig.

    Returns:
      A `devices.DeviceProfile`.
    """
    tablets = [
        d for d in config.devices if devices_lib.DEVICES[d].device_type == "tablet"
    ]
    phones = [d for d in config.devices if d not in tablets]
    use_tablet = bool(tablets) and (
        not phones or rng.uniform() < config.tablet_fraction
    )
    names = tablets if use_tablet else phones
    lightest = min(GAZECAPTURE_ROSTER.values())
    weights = np.array([GAZECAPTURE_ROSTER.get(n, lightest) for n in names])
    return devices_lib.DEVICES[names[rng.choice(len(names), p=weights / weights.sum())]]


def orientation_probabilities(config, device):
    """Probabilities of orientations 1-4 for a device.

    `config.orientation_weights`, with upside down (2) removed on phones.

    Args:
      config: SyntheticConfig.
      device: DeviceProfile.

    Returns:
      float64 array (4,) summing to 1.
    """
    weights = np.asarray(config.orientation_weights, np.float64).copy()
    if device.device_type == "phone":
        weights[1] = 0.0
    if weights.sum() <= 0:  # Only upside down was allowed: phones stay upright.
        weights = np.array([1.0, 0.0, 0.0, 0.0])
    return weights / weights.sum()


def choose_orientation(rng, config, device):
    """Draws an orientation (1-4) for the device."""
    return int(rng.choice(4, p=orientation_probabilities(config, device))) + 1
