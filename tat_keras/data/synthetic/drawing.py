"""Drawing primitives on planar float32 patches (3, H, W), values in 0..255.

Planar layout (one contiguous plane per channel) is several times faster
than interleaved RGB in NumPy.

Example:

>>> patch = np.full((3, 9, 9), 100.0, np.float32)
>>> modulate_ellipse(patch, (0, 0), (4.0, 4.0), (3.0, 3.0), 0.0, (0.5, 0.5, 0.5))
>>> float(patch[0, 4, 4]), float(patch[0, 0, 0])
(50.0, 100.0)
"""

import math

import numpy as np


def soft(values, scale):
    """Anti-aliased step: 0 below 0, 1 above 1/scale."""
    return np.clip(values * scale, 0.0, 1.0)


def ellipse_window(patch_shape, origin, centre, radius):
    """Integer window of the patch that holds a disc, or None."""
    height, width = patch_shape[-2:]
    x0 = max(int(math.floor(centre[0] - radius)) - origin[0], 0)
    x1 = min(int(math.ceil(centre[0] + radius)) + 1 - origin[0], width)
    y0 = max(int(math.floor(centre[1] - radius)) - origin[1], 0)
    y1 = min(int(math.ceil(centre[1] + radius)) + 1 - origin[1], height)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, x1, y0, y1


def modulate_ellipse(patch, origin, centre, axes, angle, gain, opacity=1.0):
    """Multiplies the pixels inside a soft ellipse by an RGB gain."""
    a, b = max(float(axes[0]), 0.5), max(float(axes[1]), 0.5)
    cu, cv = float(centre[0]), float(centre[1])
    window = ellipse_window(patch.shape, origin, (cu, cv), max(a, b) + 1)
    if window is None:
        return
    x0, x1, y0, y1 = window
    xs = np.arange(x0, x1, dtype=np.float32) + (origin[0] - cu)
    ys = np.arange(y0, y1, dtype=np.float32) + (origin[1] - cv)
    c, s = math.cos(float(angle)), math.sin(float(angle))
    p = (xs[None, :] * c + ys[:, None] * s) / a
    q = (ys[:, None] * c - xs[None, :] * s) / b
    alpha = soft(1.0 - (p * p + q * q), 0.5 * min(a, b)) * opacity
    region = patch[:, y0:y1, x0:x1]
    for channel, value in enumerate(gain):
        region[channel] *= 1.0 + alpha * (float(value) - 1.0)


def box_blur(patch, length, axis):
    """Motion blur: a moving average of `length` pixels along one axis.

    `patch` is planar (3, H, W); `axis` 0 blurs along rows (vertical motion),
    1 along columns.
    """
    axis += 1
    pad = [(0, 0)] * 3
    pad[axis] = (length // 2, length - 1 - length // 2)
    padded = np.pad(patch, pad, mode="edge")
    total = np.cumsum(padded, axis=axis, dtype=np.float32)
    total = np.concatenate(
        [np.zeros_like(np.take(total, [0], axis=axis)), total], axis=axis
    )
    n = patch.shape[axis]
    upper = np.take(total, np.arange(length, length + n), axis=axis)
    lower = np.take(total, np.arange(0, n), axis=axis)
    return (upper - lower) / length


def _ellipse_coordinates(patch, origin, centre, axes, angle):
    """Window and normalised coordinates (p, q) of an ellipse, or None."""
    a, b = max(float(axes[0]), 0.5), max(float(axes[1]), 0.5)
    cu, cv = float(centre[0]), float(centre[1])
    window = ellipse_window(patch.shape, origin, (cu, cv), max(a, b) + 1)
    if window is None:
        return None
    x0, x1, y0, y1 = window
    xs = np.arange(x0, x1, dtype=np.float32) + (origin[0] - cu)
    ys = np.arange(y0, y1, dtype=np.float32) + (origin[1] - cv)
    c, s = math.cos(float(angle)), math.sin(float(angle))
    p = (xs[None, :] * c + ys[:, None] * s) * (1.0 / a)
    q = (ys[:, None] * c - xs[None, :] * s) * (1.0 / b)
    return window, p, q, min(a, b)


def paint_ring(patch, origin, centre, axes, angle, width, colour, opacity=1.0):
    """Paints a soft elliptic ring (a spectacle rim) in a colour.

    Args:
      patch: float32 (3, H, W).
      origin: (x, y) of the patch's top-left pixel in the frame.
      centre: (u, v) of the ring in the frame.
      axes: (a, b) outer semi-axes in pixels.
      angle: float. rotation of the ellipse, radians.
      width: float. ring width in pixels.
      colour: 3 floats.
      opacity: float.
    """
    found = _ellipse_coordinates(patch, origin, centre, axes, angle)
    if found is None:
        return
    (x0, x1, y0, y1), p, q, small = found
    radius = np.sqrt(p * p + q * q)
    inner = 1.0 - max(float(width), 0.8) / small
    alpha = soft(1.0 - radius, 0.5 * small) * soft(radius - inner, 0.5 * small)
    alpha *= opacity
    region = patch[:, y0:y1, x0:x1]
    for channel in range(3):
        plane = region[channel]
        plane += alpha * (float(colour[channel]) - plane)


def add_ellipse(patch, origin, centre, axes, angle, value):
    """Adds `value` (3 floats) inside a soft ellipse (a reflection, a glint)."""
    found = _ellipse_coordinates(patch, origin, centre, axes, angle)
    if found is None:
        return
    (x0, x1, y0, y1), p, q, small = found
    alpha = soft(1.0 - (p * p + q * q), max(0.5 * small, 1.0))
    region = patch[:, y0:y1, x0:x1]
    for channel in range(3):
        region[channel] += alpha * float(value[channel])
